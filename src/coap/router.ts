/**
 * Routes CoAP requests arriving over DTLS-PSK sessions to backend handlers, telling each handler
 * which device is calling (go-coap's mux, in spirit).
 *
 * Paths are matched on the Uri-Path options themselves, not on a joined URL, so a segment that
 * contains '/' or '?' can never impersonate another route. Uri-Path and Uri-Query are not
 * percent-encoded on the wire (RFC 7252 section 6.5), so params and query values reach handlers
 * exactly as the device sent them.
 */
import type { CoapRequest, CoapResponse } from './exchange.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** The request as a handler sees it: who is calling (identity, keyLabel, serial, ...), params, query, payload, options. */
export type RouteRequest = CoapRequest;
/** The response: `code`, `setOption`, `end`; and for Observe `observing`, `write`, `onClose`. */
export type RouteResponse = CoapResponse;

/**
 * A handler may answer at once or later (return a promise, or keep `res`): a CON request not
 * answered within the piggyback delay gets an empty ACK and its answer as a separate response.
 */
export type Handler = (req: RouteRequest, res: RouteResponse) => unknown;

/** Runs before the handler (and before 4.04/4.05); call `next()` to go on, or answer `res`. */
export type Middleware = (req: RouteRequest, res: RouteResponse, next: () => Promise<void>) => unknown;

/** Called once per response, when its first message leaves (metrics). */
export type ResponseHook = (req: RouteRequest, res: RouteResponse) => void;

/** Link attributes (RFC 6690 section 3; obs from RFC 7641) shown in /.well-known/core. */
export interface LinkAttributes {
  rt?: string | string[];
  if?: string | string[];
  ct?: number | number[];
  obs?: boolean;
  title?: string;
}

export interface RouterLogger {
  error(message: string, error?: unknown): void;
}

export interface RouterOptions {
  /** Where handler failures go. Default: console. */
  logger?: RouterLogger;
}

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'rest' };

interface Route {
  method: Method;
  pattern: string;
  segments: Segment[];
  /** Pattern with param names erased: two routes with the same shape and method conflict. */
  shape: string;
  attrs: LinkAttributes;
  handler: Handler;
}

const WELL_KNOWN_CORE = '/.well-known/core';
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const CONTENT_FORMAT_TEXT = 0; // text/plain;charset=utf-8
const CONTENT_FORMAT_LINK = 40; // application/link-format

function parsePattern(pattern: string): Segment[] {
  if (!pattern.startsWith('/')) throw new Error(`route pattern must start with '/': ${pattern}`);
  const parts = pattern === '/' ? [] : pattern.slice(1).split('/');
  const names = new Set<string>();
  return parts.map((part, i): Segment => {
    if (part === '*') {
      if (i !== parts.length - 1) throw new Error(`'*' may only end a route pattern: ${pattern}`);
      return { kind: 'rest' };
    }
    if (part.startsWith(':')) {
      const name = part.slice(1);
      if (!PARAM_NAME.test(name) || name === 'rest' || names.has(name)) {
        throw new Error(`bad or repeated parameter '${part}' in route pattern: ${pattern}`);
      }
      names.add(name);
      return { kind: 'param', name };
    }
    if (part === '' || part.includes('*')) throw new Error(`bad segment '${part}' in route pattern: ${pattern}`);
    return { kind: 'literal', value: part };
  });
}

function shapeOf(segments: Segment[]): string {
  return '/' + segments.map((s) => (s.kind === 'literal' ? `=${s.value}` : s.kind)).join('/');
}

/** Params on success; undefined when the path does not fit the pattern. */
function matchSegments(segments: Segment[], path: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.kind === 'rest') {
      params.rest = path.slice(i).join('/');
      return params;
    }
    const part = path[i];
    if (part === undefined) return undefined;
    if (seg.kind === 'literal') {
      if (part !== seg.value) return undefined;
    } else {
      if (part === '') return undefined;
      params[seg.name] = part;
    }
  }
  return path.length === segments.length ? params : undefined;
}

/** Literal beats param beats rest, segment by segment from the left. */
function specificity(route: Route): number[] {
  return route.segments.map((s) => (s.kind === 'literal' ? 0 : s.kind === 'param' ? 1 : 2));
}

function moreSpecific(a: Route, b: Route): boolean {
  const sa = specificity(a);
  const sb = specificity(b);
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    if (sa[i] !== sb[i]) return sa[i]! < sb[i]!;
  }
  return sa.length > sb.length;
}

function list<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function quoted(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The href of a route in /.well-known/core: an RFC 6570 URI Template. `:id` becomes `{id}`,
 * a trailing `*` becomes `{+rest}` (reserved expansion: the rest may contain '/').
 */
function hrefOf(segments: Segment[]): string {
  const parts = segments.map((s) =>
    s.kind === 'literal' ? encodeURIComponent(s.value) : s.kind === 'param' ? `{${s.name}}` : '{+rest}',
  );
  return '/' + parts.join('/');
}

/** The attribute values a /.well-known/core query filter compares against (RFC 6690 4.1). */
function attrValues(href: string, attrs: LinkAttributes, name: string): string[] {
  switch (name) {
    case 'href':
      return [href];
    case 'rt':
    case 'if':
      return list(attrs[name]).flatMap((v) => v.split(' '));
    case 'ct':
      return list(attrs.ct).map(String);
    case 'title':
      return attrs.title === undefined ? [] : [attrs.title];
    case 'obs':
      return attrs.obs === true ? [''] : [];
    default:
      return [];
  }
}

function filterMatches(values: string[], wanted: string): boolean {
  if (wanted.endsWith('*')) return values.some((v) => v.startsWith(wanted.slice(0, -1)));
  return values.includes(wanted);
}

function formatLink(href: string, attrs: LinkAttributes): string {
  let link = `<${href}>`;
  const rt = list(attrs.rt);
  if (rt.length > 0) link += `;rt=${quoted(rt.join(' '))}`;
  const ifs = list(attrs.if);
  if (ifs.length > 0) link += `;if=${quoted(ifs.join(' '))}`;
  const ct = list(attrs.ct);
  if (ct.length === 1) link += `;ct=${ct[0]}`;
  else if (ct.length > 1) link += `;ct=${quoted(ct.join(' '))}`;
  if (attrs.obs === true) link += ';obs';
  if (attrs.title !== undefined) link += `;title=${quoted(attrs.title)}`;
  return link;
}

function reply(res: RouteResponse, code: string, payload?: string, contentFormat?: number): void {
  res.code = code;
  if (contentFormat !== undefined) res.setOption('Content-Format', contentFormat);
  res.end(payload);
}

export class Router {
  private readonly routes: Route[] = [];
  private readonly middlewares: Middleware[] = [];
  private inFlight = 0;
  private readonly idleWaiters = new Set<() => void>();
  private readonly logger: RouterLogger;
  private readonly hooks: ResponseHook[] = [];

  constructor(options: RouterOptions = {}) {
    this.logger = options.logger ?? console;
    this.get('/whoami', { ct: 0 }, (req, res) => reply(res, '2.05', req.identity, CONTENT_FORMAT_TEXT));
    this.get(WELL_KNOWN_CORE, { ct: 40 }, (req, res) =>
      reply(res, '2.05', this.linkFormat(req.query), CONTENT_FORMAT_LINK),
    );
  }

  get(pattern: string, handler: Handler): this;
  get(pattern: string, attrs: LinkAttributes, handler: Handler): this;
  get(pattern: string, a: LinkAttributes | Handler, b?: Handler): this {
    return this.mount('GET', pattern, a, b);
  }

  post(pattern: string, handler: Handler): this;
  post(pattern: string, attrs: LinkAttributes, handler: Handler): this;
  post(pattern: string, a: LinkAttributes | Handler, b?: Handler): this {
    return this.mount('POST', pattern, a, b);
  }

  put(pattern: string, handler: Handler): this;
  put(pattern: string, attrs: LinkAttributes, handler: Handler): this;
  put(pattern: string, a: LinkAttributes | Handler, b?: Handler): this {
    return this.mount('PUT', pattern, a, b);
  }

  delete(pattern: string, handler: Handler): this;
  delete(pattern: string, attrs: LinkAttributes, handler: Handler): this;
  delete(pattern: string, a: LinkAttributes | Handler, b?: Handler): this {
    return this.mount('DELETE', pattern, a, b);
  }

  /** Middlewares run in mount order, for every request, before the route's handler. */
  use(middleware: Middleware): this {
    this.middlewares.push(middleware);
    return this;
  }

  /** Hooks run once per response, when its first message is sent (after the handler chose the code). */
  onResponse(hook: ResponseHook): this {
    this.hooks.push(hook);
    return this;
  }

  /** The endpoint calls this when a response's first message leaves. */
  responded(req: RouteRequest, res: RouteResponse): void {
    for (let i = 0; i < this.hooks.length; i++) {
      try {
        this.hooks[i]!(req, res);
      } catch (err) {
        this.logger.error('coap: response hook failed', err);
      }
    }
  }

  private mount(method: Method, pattern: string, a: LinkAttributes | Handler, b?: Handler): this {
    const handler = typeof a === 'function' ? a : b;
    if (typeof handler !== 'function') throw new Error(`${method} ${pattern}: no handler`);
    const attrs = typeof a === 'function' ? {} : a;
    const segments = parsePattern(pattern);
    const shape = shapeOf(segments);
    const clash = this.routes.find((r) => r.method === method && r.shape === shape);
    if (clash !== undefined) throw new Error(`${method} ${pattern}: already mounted as ${clash.pattern}`);
    this.routes.push({ method, pattern, segments, shape, attrs, handler });
    return this;
  }

  /**
   * CoRE Link Format of the mounted routes, one link per path (methods share it; the first
   * attributes given for a path win). /.well-known/core itself is not listed.
   */
  linkFormat(filter: URLSearchParams = new URLSearchParams()): string {
    const seen = new Map<string, { href: string; attrs: LinkAttributes }>();
    for (const route of this.routes) {
      if (route.pattern === WELL_KNOWN_CORE) continue;
      const entry = seen.get(route.shape);
      if (entry === undefined) seen.set(route.shape, { href: hrefOf(route.segments), attrs: { ...route.attrs } });
      else entry.attrs = { ...route.attrs, ...entry.attrs };
    }
    const links: string[] = [];
    for (const { href, attrs } of seen.values()) {
      let keep = true;
      for (const [name, wanted] of filter) keep &&= filterMatches(attrValues(href, attrs, name), wanted);
      if (keep) links.push(formatLink(href, attrs));
    }
    return links.join(',');
  }

  /** Requests whose handling (middlewares and handler) has not finished yet. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /**
   * Resolves once no request is being handled (true), or after `timeoutMs` (false). A graceful
   * shutdown waits here so that every request already received gets its answer.
   */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.add(done);
    });
  }

  /**
   * Answers one request: matches the route, runs the middlewares and the handler. Never throws:
   * every failure is logged and, when nothing was sent yet, answered with 5.00. A handler that
   * answers synchronously costs no promise and no closure here.
   */
  handle(req: RouteRequest, res: RouteResponse): void {
    const path = req.path;
    const method = req.method;
    let best: Route | undefined;
    let bestParams: Record<string, string> | undefined;
    let pathKnown = false;
    for (let i = 0; i < this.routes.length; i++) {
      const route = this.routes[i]!;
      const params = matchSegments(route.segments, path);
      if (params === undefined) continue;
      pathKnown = true;
      if (route.method !== method) continue;
      if (best === undefined || moreSpecific(route, best)) {
        best = route;
        bestParams = params;
      }
    }
    if (best !== undefined) {
      req.params = bestParams!;
      req.route = best.pattern;
    }
    const final: Handler = best?.handler ?? (pathKnown ? methodNotAllowed : notFound);
    this.inFlight++;
    let result: unknown;
    try {
      result = this.middlewares.length === 0 ? final(req, res) : this.runFrom(0, req, res, final);
    } catch (err) {
      this.failed(req, res, err);
      this.settled();
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(
        () => this.settled(),
        (err: unknown) => {
          this.failed(req, res, err);
          this.settled();
        },
      );
    } else {
      this.settled();
    }
  }

  private settled(): void {
    if (--this.inFlight === 0 && this.idleWaiters.size > 0) {
      for (const wake of [...this.idleWaiters]) wake();
      this.idleWaiters.clear();
    }
  }

  private failed(req: RouteRequest, res: RouteResponse, err: unknown): void {
    this.logger.error(`coap: ${req.method} ${req.url} from ${req.identity} failed`, err);
    if (res.headersSent) return;
    try {
      reply(res, '5.00');
    } catch (sendErr) {
      this.logger.error(`coap: 5.00 for ${req.method} ${req.url} could not be sent`, sendErr);
    }
  }

  /**
   * Middlewares from the i-th on, then the handler. A method, not a closure made per request:
   * the tsx/esbuild build names every closure it makes (`__name`), about 0.4 µs each here.
   */
  private async runFrom(i: number, req: RouteRequest, res: RouteResponse, final: Handler): Promise<void> {
    const middleware = this.middlewares[i];
    if (middleware === undefined) {
      await final(req, res);
      return;
    }
    let called = false;
    await middleware(req, res, () => {
      if (called) return Promise.reject(new Error('next() called twice'));
      called = true;
      return this.runFrom(i + 1, req, res, final);
    });
  }
}

const notFound: Handler = (_req, res) => reply(res, '4.04', 'Not Found');
const methodNotAllowed: Handler = (_req, res) => reply(res, '4.05', 'Method Not Allowed');
