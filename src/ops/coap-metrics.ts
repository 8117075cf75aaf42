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

/** What a wrapped response needs to count itself: set per request, read once. */
interface Pending {
  req: RouteRequest;
  metrics: ServerMetrics;
  end: (...a: unknown[]) => unknown;
  write: (...a: unknown[]) => unknown;
}

/** The parts of node-coap's response (OutgoingMessage or ObserveWriteStream) used here. */
interface Wrapped {
  code?: string;
  statusCode?: string;
  end: (...a: unknown[]) => unknown;
  write: (...a: unknown[]) => unknown;
}

/**
 * The response's own end/write, installed per request, are these two shared functions: no
 * closure is made per request, and no property is ever deleted (a delete would turn node-coap's
 * response object into a slow dictionary-mode object for the rest of its life). What they need
 * is kept beside the response and dropped once counted, so that a kept reply holds nothing of
 * the request.
 */
const pending = new WeakMap<object, Pending>();

function countOnce(res: Wrapped): Pending | undefined {
  const p = pending.get(res);
  if (p === undefined) return undefined;
  pending.delete(res);
  const code = (res.code || res.statusCode || '2.05').toString();
  const route = (p.req as Marked)[ROUTE] ?? builtInOrUnmatched(pathOf(p.req));
  p.metrics.coapRequests.inc({ method: p.req.method ?? 'unknown', route, code });
  // From now on the response's own methods are the originals again.
  res.end = p.end;
  res.write = p.write;
  return p;
}

function endCounted(this: Wrapped, ...args: unknown[]): unknown {
  countOnce(this);
  return this.end === endCounted ? undefined : this.end(...args);
}

function writeCounted(this: Wrapped, ...args: unknown[]): unknown {
  countOnce(this);
  return this.write === writeCounted ? undefined : this.write(...args);
}

export function coapMetricsMiddleware(metrics: ServerMetrics): Middleware {
  return (req, res, next) => {
    const r = res as unknown as Wrapped;
    pending.set(r, { req, metrics, end: r.end, write: r.write });
    r.end = endCounted;
    r.write = writeCounted;
    return next();
  };
}
