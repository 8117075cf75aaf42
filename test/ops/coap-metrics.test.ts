/**
 * The CoAP request counter: one count per response when its first message leaves, labelled by
 * route pattern (never the concrete path) and code; an Observe relation counts once, not per
 * notification. Driven by node-coap's client over the plain-UDP stand-in of the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Router } from '../../src/coap/router.js';
import { countCoapResponses, registerCoapStateMetrics } from '../../src/ops/coap-metrics.js';
import { ServerMetrics } from '../../src/ops/metrics.js';
import { nodeCoapClient, nodeCoapRequest, type NodeCoapClient } from '../helpers/coap-client.js';
import { sample } from '../helpers/prometheus.js';
import { UdpEndpoint } from '../helpers/udp-endpoint.js';

async function counted(metrics: ServerMetrics): Promise<Array<{ labels: Record<string, unknown>; value: number }>> {
  const got = await metrics.coapRequests.get();
  return got.values.map((v) => ({ labels: v.labels, value: v.value }));
}

describe('countCoapResponses', () => {
  const metrics = new ServerMetrics({ processMetrics: false });
  let endpoint: UdpEndpoint;
  let client: NodeCoapClient;

  beforeAll(async () => {
    const router = new Router();
    countCoapResponses(router, metrics);
    router.get('/devices/:id', (req, res) => res.end(req.params.id));
    router.put('/devices/:id', (_req, res) => {
      res.code = '2.04';
      res.end();
    });
    endpoint = await UdpEndpoint.open(router);
    registerCoapStateMetrics(endpoint.coap, metrics.registry);
    client = await nodeCoapClient(endpoint, 'SN-metrics');
  });
  afterAll(async () => {
    client.sock.close();
    await endpoint.close();
  });

  it('counts by pattern and code, built-ins by path, the rest as unmatched', async () => {
    await nodeCoapRequest(client, endpoint, '/devices/a');
    await nodeCoapRequest(client, endpoint, '/devices/b');
    await nodeCoapRequest(client, endpoint, '/devices/b', { method: 'PUT', payload: Buffer.from('x') });
    await nodeCoapRequest(client, endpoint, '/whoami');
    await nodeCoapRequest(client, endpoint, '/no/such');
    expect(await counted(metrics)).toEqual([
      { labels: { method: 'GET', route: '/devices/:id', code: '2.05' }, value: 2 },
      { labels: { method: 'PUT', route: '/devices/:id', code: '2.04' }, value: 1 },
      { labels: { method: 'GET', route: '/whoami', code: '2.05' }, value: 1 },
      { labels: { method: 'GET', route: 'unmatched', code: '4.04' }, value: 1 },
    ]);
  });

  it('shows what the CoAP layer holds: the five requests above remembered for duplicate detection', async () => {
    const text = await metrics.registry.metrics();
    expect(sample(text, 'coap_psk_coap_reply_cache_entries')).toBe(5);
    const bytes = sample(text, 'coap_psk_coap_reply_cache_bytes');
    // Five replies (a 4-byte header at least) with their Message IDs (2 bytes), and far from the 16 MiB bound.
    expect(bytes).toBeGreaterThan(5 * (4 + 2));
    expect(bytes).toBeLessThan(5 * 2048);
    expect(sample(text, 'coap_psk_coap_observe_relations')).toBe(0);
    expect(sample(text, 'coap_psk_coap_block1_bytes')).toBe(0);
  });
});
