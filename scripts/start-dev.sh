#!/usr/bin/env bash
# `npm start`: everything a newcomer needs, then the server on the development SoftHSM token.
# Installs missing system packages (softhsm2, libcoap3-bin, ...) and npm dependencies, creates
# the token in .dev/ on first run (random PIN and master key, never printed), and serves
# CoAP over DTLS 1.2 PSK on udp/5684 (COAP_PSK_HOST / COAP_PSK_PORT to change).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/ensure-node-modules.sh
exec node bin/coap-psk.js serve --init-dev "$@"
