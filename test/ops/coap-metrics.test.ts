/**
 * The CoAP request counter's middleware on node-coap's own response classes: a reply is
 * counted once, when it is first sent (end() for a plain reply, the first write() of an Observe
 * notification stream), and the response is left with its own methods afterwards.
 */
import coap from 'coap';
import type { OutgoingMessage } from 'coap';
import { describe, expect, it } from 'vitest';
import type { RouteRequest } from '../../src/coap/router.js';
import { coapMetricsMiddleware } from '../../src/ops/coap-metrics.js';
import { ServerMetrics } from '../../src/ops/metrics.js';

const request = { messageId: 7, token: Buffer.from('t'), confirmable: false, options: [] };

function routeRequest(path: string[]): RouteRequest {
  const options = path.map((p) => ({ name: 'Uri-Path', value: Buffer.from(p) }));
  return { method: 'GET', _packet: { options } } as unknown as RouteRequest;
}

async function counted(metrics: ServerMetrics): Promise<Array<{ labels: Record<string, unknown>; value: number }>> {
  const got = await metrics.coapRequests.get();
  return got.values.map((v) => ({ labels: v.labels, value: v.value }));
}

describe('coapMetricsMiddleware', () => {
  it('counts a plain reply once, at end(), and leaves the response its own end()', async () => {
    const metrics = new ServerMetrics({ processMetrics: false });
    const sent: unknown[] = [];
    const res = new coap.OutgoingMessage(request as never, (_r, packet) => {
      sent.push(packet.code);
    });
    await coapMetricsMiddleware(metrics)(routeRequest(['whoami']), res as unknown as OutgoingMessage, async () => {
      res.code = '2.05';
      res.end(Buffer.from('SN-1'));
    });
    expect(sent).toEqual(['2.05']);
    expect(await counted(metrics)).toEqual([{ labels: { method: 'GET', route: '/whoami', code: '2.05' }, value: 1 }]);
    expect(res.end).toBe(coap.OutgoingMessage.prototype.end);
    expect(res.write).toBe(coap.OutgoingMessage.prototype.write);
  });

  it('counts an Observe stream at its first notification, not at each', async () => {
    const metrics = new ServerMetrics({ processMetrics: false });
    let notifications = 0;
    const res = new coap.ObserveWriteStream(request as never, () => notifications++);
    await coapMetricsMiddleware(metrics)(routeRequest(['no', 'such']), res as unknown as OutgoingMessage, async () => {
      res.write('1');
      res.write('2');
    });
    expect(notifications).toBe(2);
    expect(await counted(metrics)).toEqual([{ labels: { method: 'GET', route: 'unmatched', code: '2.05' }, value: 1 }]);
  });

  it('counts nothing for a request whose handler has not answered yet', async () => {
    const metrics = new ServerMetrics({ processMetrics: false });
    const res = new coap.OutgoingMessage(request as never, () => {});
    await coapMetricsMiddleware(metrics)(routeRequest(['whoami']), res as unknown as OutgoingMessage, async () => {});
    expect(await counted(metrics)).toEqual([]);
  });
});
