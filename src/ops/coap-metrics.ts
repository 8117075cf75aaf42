/**
 * CoAP request metrics by route pattern (never by concrete path: /devices/:id stays one series)
 * and response code, counted once per response when its first message leaves (the response of
 * a plain request, the registration's response of an Observe relation, not every notification).
 */
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
    metrics.coapRequests.inc({ method: req.method, route: routeLabel(req), code: res.code });
  });
}
