/**
 * ServerMetrics' plain counters: what the hot paths bump shows up at scrape time under the
 * series names and labels the README lists, and scraping twice does not count twice.
 */
import { describe, expect, it } from 'vitest';
import { ServerMetrics } from '../../src/ops/metrics.js';
import { sample } from '../helpers/prometheus.js';

describe('ServerMetrics counters', () => {
  it('counts handshakes by result and suite, failures by reason, requests by method/route/code', async () => {
    const m = new ServerMetrics({ processMetrics: false });
    const base = { address: '127.0.0.1', port: 1, durationMs: 20 };
    m.onHandshake({ ...base, result: 'ok', cipherSuite: 'TLS_PSK_WITH_AES_128_CCM_8' });
    m.onHandshake({ ...base, result: 'ok', cipherSuite: 'TLS_PSK_WITH_AES_128_CCM_8' });
    m.onHandshake({ ...base, result: 'failed', cipherSuite: 'TLS_PSK_WITH_AES_128_CCM_8', reason: 'finished_mismatch' });
    m.countRequest('GET', '/whoami', '2.05');
    m.countRequest('GET', '/whoami', '2.05');
    m.coapRequests.inc({ method: 'GET', route: '/whoami', code: '2.05' });
    for (const _ of [1, 2]) {
      const text = await m.metrics();
      expect(sample(text, 'coap_psk_handshakes_total', { result: 'ok', suite: 'TLS_PSK_WITH_AES_128_CCM_8' })).toBe(2);
      expect(sample(text, 'coap_psk_handshakes_total', { result: 'failed', suite: 'TLS_PSK_WITH_AES_128_CCM_8' })).toBe(1);
      expect(sample(text, 'coap_psk_handshake_failures_total', { reason: 'finished_mismatch' })).toBe(1);
      expect(sample(text, 'coap_psk_handshake_duration_seconds_bucket', { le: '0.025', result: 'ok' })).toBe(2);
      expect(sample(text, 'coap_psk_handshake_duration_seconds_bucket', { le: '0.01', result: 'ok' })).toBe(0);
      expect(sample(text, 'coap_psk_coap_requests_total', { method: 'GET', route: '/whoami', code: '2.05' })).toBe(3);
    }
  });

  it('counts key lookups in front of the cache and derivations behind it', async () => {
    const m = new ServerMetrics({ processMetrics: false });
    const source = m.instrumentSource({ resolve: async () => [{ psk: Buffer.alloc(16), keyLabel: 'k' }], close: async () => {} });
    const lookups = m.instrumentLookups(source);
    await lookups.resolve(Buffer.from('a'));
    await lookups.resolve(Buffer.from('b'));
    const text = await m.metrics();
    expect(sample(text, 'coap_psk_key_lookups_total')).toBe(2);
    expect(sample(text, 'coap_psk_hsm_derivation_duration_seconds_count', { result: 'ok' })).toBe(2);
    expect(sample(text, 'coap_psk_key_cache_misses_total')).toBe(2);
  });
});
