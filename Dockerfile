# syntax=docker/dockerfile:1
# coap-psk-resolver as `coap-psk serve`, run by an unprivileged user (uid 1000, `node`).
#
#   docker build -t coap-psk-resolver:0.1.0 .
#   docker build --build-arg SOFTHSM=true -t coap-psk-resolver:0.1.0-lab .    # with SoftHSM, for a lab
#
# Production keys live in a network HSM: its vendor's PKCS#11 client library goes into an image
# of your own built FROM this one, and COAP_PSK_PKCS11_MODULE points at it (docs/cluster.md,
# "How the PKCS#11 module reaches a pod"). Settings come from the environment (README,
# Configuration); the PIN from a file (COAP_PSK_PIN_FILE), mounted from a Secret.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
# pkcs11js is a native addon: npm ci compiles it, which needs a compiler and Python.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# package.json overrides a dev dependency with this local stub; npm ci reads it even with --omit=dev.
COPY test/stubs/node-aead-crypto ./test/stubs/node-aead-crypto
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY deploy/softhsm-lab ./deploy/softhsm-lab

FROM ${NODE_IMAGE}
ARG SOFTHSM=false
RUN if [ "$SOFTHSM" = "true" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends softhsm2 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
ENV NODE_ENV=production \
    COAP_PSK_LOG_FORMAT=json
WORKDIR /app
# Owned by root, run by uid 1000: the server cannot rewrite its own code.
COPY --from=build /app /app
USER 1000:1000
# 5684/udp CoAP over DTLS; 9464/tcp /metrics and /healthz (when COAP_PSK_METRICS_PORT is set).
EXPOSE 5684/udp 9464/tcp
ENTRYPOINT ["node", "bin/coap-psk.js"]
CMD ["serve"]
