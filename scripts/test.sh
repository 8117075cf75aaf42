#!/usr/bin/env bash
# `npm test`: installs what the tests need (system peers, npm dependencies), then runs vitest.
# Extra arguments go to vitest: `npm test -- test/interop`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/ensure-node-modules.sh
exec npx vitest run "$@"
