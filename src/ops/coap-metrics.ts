/**
 * CoAP request metrics by route pattern (never by concrete path: /devices/:id stays one series)
 * and response code.
 *
 * The router does not tell middlewares which route matched, so the handlers mounted after
 * trackRoutes() mark the request with their pattern on the way in (hook wanted in
 * src/coap/router.ts: `req.route` set before middlewares run). A response is counted when it
 * is first sent — end() for a plain reply, the first write() for an Observe registration.
 */
import type { OutgoingMessage } from 'coap';
import type { Handler, Middleware, Router, RouteRequest } from '../coap/router.js';
import type { ServerMetrics } from './metrics.js';

const ROUTE = Symbol('coap-psk.route');
const BUILT_IN = new Set(['/whoami', '/.well-known/core']);
const METHODS = ['get', 'post', 'put', 'delete'] as const;

type Marked = RouteRequest & { [ROUTE]?: string };

/** Makes every handler mounted from now on record its pattern on the request. */
export function trackRoutes(router: Router): void {
  for (const m of METHODS) {
    const mount = router[m].bind(router) as (pattern: string, a: unknown, b?: unknown) => Router;
    (router as unknown as Record<string, unknown>)[m] = (pattern: string, a: unknown, b?: unknown) => {
      const mark = (h: unknown): unknown =>
        typeof h !== 'function'
          ? h
          : ((req: Marked, res: OutgoingMessage) => {
              req[ROUTE] = pattern;
              return (h as Handler)(req, res);
            });
      return typeof a === 'function' ? mount(pattern, mark(a)) : mount(pattern, a, mark(b));
    };
  }
}

function pathOf(req: RouteRequest): string {
  const segments = (req._packet.options ?? []).filter((o) => o.name === 'Uri-Path').map((o) => String(o.value));
  return '/' + segments.join('/');
}

function builtInOrUnmatched(path: string): string {
  return BUILT_IN.has(path) ? path : 'unmatched';
}

export function coapMetricsMiddleware(metrics: ServerMetrics): Middleware {
  return async (req, res, next) => {
    let counted = false;
    const count = () => {
      if (counted) return;
      counted = true;
      const r = res as OutgoingMessage & { statusCode?: string };
      const code = (r.code || r.statusCode || '2.05').toString();
      const route = (req as Marked)[ROUTE] ?? builtInOrUnmatched(pathOf(req));
      metrics.coapRequests.inc({ method: req.method ?? 'unknown', route, code });
    };
    const stream = res as unknown as { end: (...a: unknown[]) => unknown; write: (...a: unknown[]) => unknown };
    const end = stream.end;
    const write = stream.write;
    // node-coap keeps every reply (for duplicate detection) for the exchange lifetime: once
    // counted, the wrappers are taken off, so that the kept reply no longer holds the request.
    const unwrap = () => {
      delete (stream as Partial<typeof stream>).end;
      delete (stream as Partial<typeof stream>).write;
    };
    stream.end = function (this: unknown, ...args: unknown[]) {
      count();
      unwrap();
      return end.apply(this, args);
    };
    stream.write = function (this: unknown, ...args: unknown[]) {
      count();
      unwrap();
      return write.apply(this, args);
    };
    await next();
  };
}
