#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than the lock file, so the
# README's commands work on a fresh clone. `npm ci` builds pkcs11js (allowed in package.json).
# Then compiles src/ to dist/ when dist/ is missing or older than a file of src/: bin/coap-psk.js
# runs dist/ (fast start) when it is up to date, and src/ through tsx otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund </dev/null
fi
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js -print -quit)" ]; then
  echo "ensure-node-modules: compiling src/ to dist/ (npm run build)"
  # A type error must not stop `npm start`: the command then runs src/ through tsx.
  npm run build --silent </dev/null || echo "ensure-node-modules: npm run build failed; coap-psk runs src/ through tsx" >&2
fi
