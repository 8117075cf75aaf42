/**
 * Metrics and health of the real server (in process) on a real SoftHSM token, driven by
 * libcoap's coap-client-openssl: the handshakes and requests the client made show up in
 * /metrics; /healthz says 200 while the token answers and 503 when the key source stalls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKeyConfig, openKeySource } from '../../src/config/keys.js';
import type { KeyResolver } from '../../src/keys/types.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { coapClient } from '../helpers/peers.js';
import { parseExposition, sample } from '../helpers/prometheus.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';

let token: TestToken;
let server: CoapPskServer;
let port: number;

async function scrape(s: CoapPskServer): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${s.ops!.port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

beforeAll(async () => {
  token = await makeToken('ops-metrics');
  const config = loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' });
  const source = await openKeySource(config);
  server = await createServer({ keys: source, cache: config.cache, metrics: { port: 0, processMetrics: false } });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
  await token?.cleanup();
});

const uri = (path: string) => `coaps://127.0.0.1:${port}${path}`;

describe('GET /metrics', () => {
  it('counts the handshake, the derivation, the cache and the request a client just made', async () => {
    const serial = 'SN-metrics-1';
    const first = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: uri('/whoami'), verbosity: 9 });
    expect(first.ok, first.stderr).toBe(true);
    const second = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: uri('/nowhere') });
    expect(second.responseCode).toBe('4.04');

    const text = await scrape(server);
    const suite = 'TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256'; // what libcoap's OpenSSL build prefers
    expect(sample(text, 'coap_psk_handshakes_total', { result: 'ok', suite })).toBe(2);
    expect(sample(text, 'coap_psk_handshake_duration_seconds_count', { result: 'ok' })).toBe(2);
    // Same serial twice: one derivation by the token, one lookup answered by the cache.
    expect(sample(text, 'coap_psk_hsm_derivation_duration_seconds_count', { result: 'ok' })).toBe(1);
    expect(sample(text, 'coap_psk_key_lookups_total')).toBe(2);
    expect(sample(text, 'coap_psk_key_cache_misses_total')).toBe(1);
    expect(sample(text, 'coap_psk_key_cache_hits_total')).toBe(1);
    expect(sample(text, 'coap_psk_coap_requests_total', { method: 'GET', route: '/whoami', code: '2.05' })).toBe(1);
    expect(sample(text, 'coap_psk_coap_requests_total', { method: 'GET', route: 'unmatched', code: '4.04' })).toBe(1);
    expect(sample(text, 'coap_psk_datagrams_total')).toBeGreaterThan(0);
    expect(sample(text, 'coap_psk_sessions')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'coap_psk_handshakes_in_progress')).toBe(0);
    expect(text).not.toContain(expectedHexKey(serial));
  });

  it('counts a failed handshake with its reason', async () => {
    const res = await coapClient({ impl: 'openssl', identity: 'SN-metrics-2', key: expectedHexKey('SN-other'), uri: uri('/whoami'), timeoutSec: 3 });
    expect(res.ok).toBe(false);
    const text = await scrape(server);
    expect(sample(text, 'coap_psk_handshakes_total', { result: 'failed' })).toBeGreaterThanOrEqual(1);
    const failures = parseExposition(text).filter((s) => s.name === 'coap_psk_handshake_failures_total' && s.labels.reason && s.value >= 1);
    expect(failures.length).toBeGreaterThan(0);
  });

  it('labels requests by route pattern, not by concrete path', async () => {
    const s = await createServer({
      keys: await openKeySource(loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' })),
      metrics: { processMetrics: false },
      routes: (r) => {
        r.get('/devices/:id/temp', (req, res) => res.end(`t ${req.params.id}`));
      },
    });
    const bound = await s.listen(0, '127.0.0.1');
    try {
      for (const id of ['a', 'b']) {
        const res = await coapClient({ impl: 'openssl', identity: 'SN-route', key: expectedHexKey('SN-route'), uri: `coaps://127.0.0.1:${bound.port}/devices/${id}/temp` });
        expect(res.payload).toBe(`t ${id}`);
      }
      const text = await s.metrics.metrics();
      expect(sample(text, 'coap_psk_coap_requests_total', { method: 'GET', route: '/devices/:id/temp', code: '2.05' })).toBe(2);
      // Its own registry: the first server's requests are not in it.
      expect(sample(text, 'coap_psk_coap_requests_total', { route: '/whoami' })).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});

describe('GET /healthz', () => {
  it('is 200 while the token derives keys', async () => {
    const res = await fetch(`http://127.0.0.1:${server.ops!.port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', hsm: 'ok' });
    expect(sample(await scrape(server), 'coap_psk_hsm_up')).toBe(1);
  });

  it('is 503 when the key source does not answer in time, and 503 when it fails', async () => {
    // The real token behind a gate: the first key source never answers, the second throws
    // as pkcs11js does when the token is gone.
    const real = await openKeySource(loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' }));
    const stalled: KeyResolver = { resolve: () => new Promise(() => {}), close: () => real.close() };
    const broken: KeyResolver = { resolve: () => Promise.reject(new Error('CKR_DEVICE_REMOVED')), close: async () => {} };
    const a = await createServer({ keys: stalled, metrics: { port: 0, healthTimeoutMs: 300, processMetrics: false } });
    const b = await createServer({ keys: broken, metrics: { port: 0, processMetrics: false } });
    await a.listen(0, '127.0.0.1');
    await b.listen(0, '127.0.0.1');
    try {
      const ra = await fetch(`http://127.0.0.1:${a.ops!.port}/healthz`);
      expect(ra.status).toBe(503);
      expect(await ra.json()).toMatchObject({ status: 'unavailable', hsm: 'timeout' });
      const rb = await fetch(`http://127.0.0.1:${b.ops!.port}/healthz`);
      expect(rb.status).toBe(503);
      expect(await rb.json()).toMatchObject({ hsm: 'CKR_DEVICE_REMOVED' });
      expect(sample(await a.metrics.metrics(), 'coap_psk_hsm_up')).toBe(0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('answers 404 elsewhere and 405 to other methods', async () => {
    expect((await fetch(`http://127.0.0.1:${server.ops!.port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.ops!.port}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
