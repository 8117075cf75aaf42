/**
 * CoAP request metrics by route pattern (never by concrete path: /devices/:id stays one series)
 * and response code, counted once per response when its first message leaves (the response of
 * a plain request, the registration's response of an Observe relation, not every notification).
 */
import { Gauge, type Registry } from 'prom-client';
import type { CoapEndpoint } from '../coap/endpoint.js';
import type { Router, RouteRequest, RouteResponse } from '../coap/router.js';
import type { ServerMetrics } from './metrics.js';

const BUILT_IN = new Set(['/whoami', '/.well-known/core']);

/** The route label: the matched pattern; 'unmatched' for a request no route took. */
export function routeLabel(req: RouteRequest): string {
  const route = req.route;
  if (route !== undefined) return route;
  const url = req.url;
  return BUILT_IN.has(url) ? url : 'unmatched';
}

export function countCoapResponses(router: Router, metrics: ServerMetrics): void {
  router.onResponse((req: RouteRequest, res: RouteResponse) => {
    metrics.countRequest(req.method, routeLabel(req), res.code);
  });
}

/** What the CoAP layer holds, read at each scrape: the memory its bounds cap. */
export function registerCoapStateMetrics(endpoint: CoapEndpoint, registry: Registry): void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: `coap_psk_coap_${name}`,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  gauge('reply_cache_bytes', 'Bytes held for CoAP duplicate detection (replies and entries), all sessions', () => endpoint.dedup.bytes);
  gauge('reply_cache_entries', 'Requests remembered for CoAP duplicate detection, all sessions', () => endpoint.dedup.entries);
  gauge('observe_relations', 'Observe relations (RFC 7641), all sessions', () => endpoint.observeRelations);
  gauge('block1_bytes', 'Bytes held by unfinished Block1 uploads (RFC 7959), all sessions', () => endpoint.block1Bytes);
}
