#!/usr/bin/env bash
# Installs the system packages the tests need, only those missing. Idempotent, non-interactive.
# Runs as root directly, otherwise through sudo.
set -euo pipefail

# golang-go and miekg/pkcs11 build the reference Go program of the write-up (conformance test);
# pion/dtls also builds the small-MTU interop client (test/peers/pion-client) and the bench's
# independent load generator (scripts/bench/pion-load).
# iproute2 and nftables make the cluster tests' network namespaces and load balancer (test/cluster).
PACKAGES=(softhsm2 opensc libcoap3-bin gnutls-bin tshark golang-go golang-github-miekg-pkcs11-dev iproute2 nftables)

# The resumption test clients: gcc, libc6-dev and libmbedtls-dev (2.28) build the C one
# (test/peers/mbedtls-client), golang-github-pion-dtls.v2-dev (2.2.6) the Go one
# (test/peers/pion-resume-client).
PACKAGES+=(gcc libc6-dev libmbedtls-dev golang-github-pion-dtls.v2-dev)
# openssl s_client resumes against the server (test/interop/resumption.test.ts, the bench's --resumption).
PACKAGES+=(openssl)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" != "installed" ]; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all present (${PACKAGES[*]})"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  # Prompt for a password only when someone is there to type it (CI has no stdin).
  if [ -t 0 ]; then SUDO=(sudo); else SUDO=(sudo -n); fi
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
# tshark asks whether non-root users may capture; answer it before apt can ask.
echo 'wireshark-common wireshark-common/install-setuid boolean false' | "${SUDO[@]}" debconf-set-selections
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
