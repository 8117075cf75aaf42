#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than the lock file, so the
# README's commands work on a fresh clone. `npm ci` builds pkcs11js (allowed in package.json).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund </dev/null
fi
