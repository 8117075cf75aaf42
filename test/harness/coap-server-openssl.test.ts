// Proves the peer helpers against libcoap's own DTLS server before they are pointed at ours.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  asciiKeyToPskHex,
  coapClient,
  gnutlsCli,
  sClient,
  startCoapServerOpenssl,
  type CoapServer,
} from '../helpers/peers.js';

// Test key only: an ASCII key the way libcoap's -k takes it (our devices' 32 hex chars).
const KEY = '00112233445566778899aabbccddeeff';
const WRONG_KEY = 'ffeeddccbbaa99887766554433221100';
const ID = 'harness-device-1';

let server: CoapServer;

beforeAll(async () => {
  server = await startCoapServerOpenssl({ key: KEY, hint: 'CoAP', lifetimeSec: 120 });
});

afterAll(async () => {
  await server?.stop();
});

describe.each(['openssl', 'gnutls'] as const)('coap-client-%s against coap-server-openssl', (impl) => {
  it('GETs /.well-known/core with the right key', async () => {
    const res = await coapClient({
      impl, identity: ID, key: KEY, uri: `coaps://127.0.0.1:${server.port}/.well-known/core`,
    });
    expect(res.timedOut).toBe(false);
    expect(res.responseCode).toBe('2.05');
    expect(res.ok).toBe(true);
    expect(res.payload).toContain('</time>');
  });

  it('reports 4.04 for a missing resource', async () => {
    const res = await coapClient({
      impl, identity: ID, key: KEY, uri: `coaps://127.0.0.1:${server.port}/no-such-thing`,
    });
    expect(res.responseCode).toBe('4.04');
    expect(res.ok).toBe(false);
    expect(res.exitCode).toBe(0); // libcoap 4.3.1 exits 0 regardless: never trust it
  });

  it('fails with a wrong key', async () => {
    const res = await coapClient({
      impl, identity: ID, key: WRONG_KEY, uri: `coaps://127.0.0.1:${server.port}/time`,
      timeoutSec: 3,
    });
    expect(res.ok).toBe(false);
    expect(res.responseCode).toBeUndefined();
    expect(res.payload).toBe('');
  });
});

describe('cipher suites', () => {
  it('coap-client-openssl negotiates ECDHE-PSK-CHACHA20-POLY1305 by default (verbosity 9 shows it)', async () => {
    const res = await coapClient({
      impl: 'openssl', identity: ID, key: KEY, uri: `coaps://127.0.0.1:${server.port}/time`,
      verbosity: 9,
    });
    expect(res.ok).toBe(true);
    expect(res.cipher).toBe('ECDHE-PSK-CHACHA20-POLY1305');
  });

  it('coap-client-gnutls can be held to TLS_PSK_WITH_AES_128_CCM_8', async () => {
    const res = await coapClient({
      impl: 'gnutls', identity: ID, key: KEY, uri: `coaps://127.0.0.1:${server.port}/time`,
      verbosity: 9, onlyCcm8: true,
    });
    expect(res.ok).toBe(true);
    expect(res.cipher).toBe('PSK_AES_128_CCM_8');
  });

  it('openssl s_client handshakes with PSK-AES128-CCM8', async () => {
    const res = await sClient({
      port: server.port, identity: ID, pskHex: asciiKeyToPskHex(KEY), cipher: 'PSK-AES128-CCM8',
    });
    expect(res.handshakeOk).toBe(true);
    expect(res.cipher).toBe('PSK-AES128-CCM8');
    expect(res.protocol).toBe('DTLSv1.2');
  });

  it('openssl s_client handshakes with a small MTU (fragmented handshake)', async () => {
    const res = await sClient({
      port: server.port, identity: ID, pskHex: asciiKeyToPskHex(KEY), cipher: 'PSK-AES128-CCM8',
      mtu: 256,
    });
    expect(res.handshakeOk).toBe(true);
  });

  it('openssl s_client does not complete a handshake with a wrong key', async () => {
    const res = await sClient({
      port: server.port, identity: ID, pskHex: asciiKeyToPskHex(WRONG_KEY),
      cipher: 'PSK-AES128-CCM8', timeoutSec: 3,
    });
    expect(res.handshakeOk).toBe(false);
  });

  it('gnutls-cli handshakes with PSK AES-128-CCM-8', async () => {
    const res = await gnutlsCli({ port: server.port, identity: ID, pskHex: asciiKeyToPskHex(KEY) });
    expect(res.handshakeOk).toBe(true);
    expect(res.description).toBe('(DTLS1.2-X.509)-(PSK)-(AES-128-CCM-8)');
  });

  it('gnutls-cli does not complete a handshake with a wrong key', async () => {
    const res = await gnutlsCli({
      port: server.port, identity: ID, pskHex: asciiKeyToPskHex(WRONG_KEY), timeoutSec: 3,
    });
    expect(res.handshakeOk).toBe(false);
  });
});
