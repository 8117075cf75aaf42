/**
 * Prometheus metrics of one server, in its own prom-client Registry (never the global one), so
 * that several servers in one process (tests, a backend embedding two listeners) do not collide.
 *
 * Where the numbers come from:
 *  - handshakes, their duration and failure reasons: DtlsServer's 'handshake' events;
 *  - sessions, handshakes in progress, datagrams and drops: read from DtlsServer at scrape time;
 *  - HSM latency and errors: a decorator around the uncached key source (instrumentSource);
 *  - cache hits and misses: lookups counted in front of the cache (instrumentLookups) minus
 *    derivations counted behind it — a single-flight join counts as a hit;
 *  - CoAP requests by route pattern and response code: a router middleware (./coap-metrics.ts).
 *
 * Nothing on a handshake's or a request's path touches prom-client: the hot paths bump plain
 * numbers (fields, a Map by suite or by method/route/code, PlainHistogram's arrays) and each
 * series is filled from them at scrape time, in its collect(). prom-client's inc({labels}) and
 * observe({labels}) hash a label object on every call.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DtlsServer, HandshakeEvent } from '../dtls/server.js';
import { HANDSHAKE_FAILURES } from '../dtls/reasons.js';
import type { KeyResolver, PskCandidate } from '../keys/types.js';
import { PlainHistogram } from './plain-histogram.js';

const PREFIX = 'coap_psk_';
/** The reason label: one of the DTLS layer's fixed codes (src/dtls/reasons.ts), so the label set is bounded. */
const FAILURE_LABELS: ReadonlySet<string> = new Set(HANDSHAKE_FAILURES);
/** hsmDuration's label values, by index (PlainHistogram). */
const HSM_OK = 0;
const HSM_UNKNOWN = 1;
const HSM_ERROR = 2;

export interface ServerMetricsOptions {
  /** Default: a new Registry. */
  registry?: Registry;
  /** Node.js process metrics (CPU, memory, event loop lag) in the same registry. Default true. */
  processMetrics?: boolean;
}

export class ServerMetrics {
  readonly registry: Registry;
  readonly handshakes: Counter<'result' | 'suite'>;
  readonly handshakeFailures: Counter<'reason'>;
  readonly handshakeDuration: PlainHistogram<'ok' | 'failed'>;
  readonly hsmDuration: PlainHistogram<'ok' | 'unknown' | 'error'>;
  readonly hsmErrors: Counter;
  readonly keyLookups: Counter;
  readonly cacheHits: Counter;
  readonly cacheMisses: Counter;
  readonly identityRefused: Counter;
  readonly coapRequests: Counter<'method' | 'route' | 'code'>;
  readonly hsmUp: Gauge;
  private lookups = 0;
  private derivations = 0;
  /** Handshakes by cipher suite: [ok, failed]. */
  private readonly bySuite = new Map<string, [number, number]>();
  /** Successful handshakes by kind (full, resumed_id, resumed_ticket). */
  private readonly byKind = new Map<string, number>();
  /** CoAP requests by "method route code" (countRequest); what collect() already passed on. */
  private readonly requests = new Map<string, { labels: { method: string; route: string; code: string }; n: number; exported: number }>();
  private dtls: DtlsServer | undefined;

  constructor(options: ServerMetricsOptions = {}) {
    const registers = [(this.registry = options.registry ?? new Registry())];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    const self = this;
    this.handshakes = new Counter({
      name: `${PREFIX}handshakes_total`, help: 'DTLS handshakes finished, by result and cipher suite', labelNames: ['result', 'suite'], registers,
      collect() {
        this.reset();
        for (const [suite, [ok, failed]] of self.bySuite) {
          if (ok > 0) this.inc({ result: 'ok', suite }, ok);
          if (failed > 0) this.inc({ result: 'failed', suite }, failed);
        }
      },
    });
    new Counter({
      name: `${PREFIX}handshakes_by_kind_total`, help: 'Successful DTLS handshakes by kind: full, resumed_id (session ID), resumed_ticket (RFC 5077 ticket)', labelNames: ['kind'], registers,
      collect() {
        this.reset();
        for (const [kind, n] of self.byKind) this.inc({ kind }, n);
      },
    });
    this.handshakeFailures = new Counter({
      name: `${PREFIX}handshake_failures_total`, help: 'Failed DTLS handshakes by reason', labelNames: ['reason'], registers,
    });
    this.handshakeDuration = new PlainHistogram(
      `${PREFIX}handshake_duration_seconds`, 'DTLS handshake duration, from the first verified ClientHello', 'result', ['ok', 'failed'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], this.registry,
    );
    this.hsmDuration = new PlainHistogram(
      `${PREFIX}hsm_derivation_duration_seconds`, 'Key derivations by the key source (HSM), by result (ok, unknown, error)', 'result', ['ok', 'unknown', 'error'],
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], this.registry,
    );
    this.hsmErrors = new Counter({ name: `${PREFIX}hsm_derivation_errors_total`, help: 'Key derivations that failed (HSM fault, timeout)', registers });
    this.keyLookups = new Counter({
      name: `${PREFIX}key_lookups_total`, help: 'Key lookups by handshakes (in front of the cache)', registers,
      collect() {
        this.reset();
        this.inc(self.lookups);
      },
    });
    this.cacheMisses = new Counter({
      name: `${PREFIX}key_cache_misses_total`, help: 'Key lookups the cache passed on to the key source', registers,
      collect() {
        this.reset();
        this.inc(self.derivations);
      },
    });
    this.cacheHits = new Counter({
      name: `${PREFIX}key_cache_hits_total`, help: 'Key lookups answered by the cache (or joined to one in flight)', registers,
      collect() {
        this.reset();
        this.inc(Math.max(0, self.lookups - self.derivations));
      },
    });
    this.identityRefused = new Counter({
      name: `${PREFIX}identity_refused_total`, help: 'PSK identities refused by the identity pattern', registers,
    });
    this.coapRequests = new Counter({
      name: `${PREFIX}coap_requests_total`, help: 'CoAP requests by method, route pattern and response code', labelNames: ['method', 'route', 'code'], registers,
      // Adds what countRequest() counted since the last scrape; coapRequests.inc() still works.
      collect() {
        for (const r of self.requests.values()) {
          if (r.n > r.exported) this.inc(r.labels, r.n - r.exported);
          r.exported = r.n;
        }
      },
    });
    this.hsmUp = new Gauge({ name: `${PREFIX}hsm_up`, help: '1 when the last health probe derived a key in time, 0 otherwise', registers });
    // Read from the DtlsServer at scrape time: never out of step with it.
    const live = (name: string, help: string, read: (d: DtlsServer) => number) =>
      new Gauge({
        name: `${PREFIX}${name}`, help, registers,
        collect() {
          this.set(self.dtls ? read(self.dtls) : 0);
        },
      });
    live('sessions', 'Established DTLS sessions', (d) => d.sessionCount);
    live('handshakes_in_progress', 'DTLS handshakes in progress', (d) => d.handshakeCount);
    live('key_lookups_pending', 'Key lookups (HSM derivations) the handshakes are waiting for', (d) => d.pendingKeyLookups);
    live('cid_sessions', 'Established DTLS sessions with an RFC 9146 Connection ID', (d) => d.cidSessionCount);
    // RFC 9146 section 6, read from the DtlsServer's counters at scrape time like the datagrams.
    const total = (name: string, help: string, read: (d: DtlsServer) => number) =>
      new Counter({
        name: `${PREFIX}${name}`, help, registers,
        collect() {
          this.reset();
          this.inc(self.dtls ? read(self.dtls) : 0);
        },
      });
    total('datagrams_total', 'UDP datagrams received', (d) => d.stats.datagrams);
    total('address_updates_total', 'Sessions that moved to a new peer address (an authenticated, newer record with their CID)', (d) => d.stats.addressUpdates);
    total('address_updates_rejected_total', 'Authenticated records from another address that were not newer, so moved nothing', (d) => d.stats.addressUpdatesRejected);
    new Counter({
      name: `${PREFIX}dropped_total`, help: 'Datagrams and records dropped, by reason', labelNames: ['reason'], registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(self.dtls?.stats.dropped ?? {})) this.inc({ reason }, n);
      },
    });
  }

  /** Follows one DtlsServer: its handshake events, its session and drop counts. */
  attach(dtls: DtlsServer): void {
    this.dtls = dtls;
    dtls.on('handshake', (e: HandshakeEvent) => this.onHandshake(e));
  }

  onHandshake(e: HandshakeEvent): void {
    const suite = e.cipherSuite ?? 'none';
    let n = this.bySuite.get(suite);
    if (n === undefined) this.bySuite.set(suite, (n = [0, 0]));
    const failed = e.result === 'failed' ? 1 : 0;
    n[failed]!++;
    if (!failed) this.byKind.set(e.kind ?? 'full', (this.byKind.get(e.kind ?? 'full') ?? 0) + 1);
    this.handshakeDuration.observe(failed, e.durationMs / 1000);
    if (failed) this.handshakeFailures.inc({ reason: this.reasonLabel(e.reason) });
  }

  /**
   * One CoAP request answered, for coap_psk_coap_requests_total: a Map lookup by a string key
   * instead of prom-client's label hashing. `route` is a pattern, never a concrete path.
   */
  countRequest(method: string, route: string, code: string): void {
    const key = `${method} ${route} ${code}`;
    const r = this.requests.get(key);
    if (r !== undefined) r.n++;
    else this.requests.set(key, { labels: { method, route, code }, n: 1, exported: 0 });
  }

  private reasonLabel(reason: string | undefined): string {
    return reason !== undefined && FAILURE_LABELS.has(reason) ? reason : 'other';
  }

  /** Wraps the uncached key source: every call is a derivation (a cache miss). */
  instrumentSource(source: KeyResolver): KeyResolver {
    return {
      resolve: async (identity: Buffer): Promise<PskCandidate[]> => {
        this.derivations++;
        const t0 = performance.now();
        try {
          const candidates = await source.resolve(identity);
          this.hsmDuration.observe(candidates.length > 0 ? HSM_OK : HSM_UNKNOWN, (performance.now() - t0) / 1000);
          return candidates;
        } catch (e) {
          this.hsmDuration.observe(HSM_ERROR, (performance.now() - t0) / 1000);
          this.hsmErrors.inc();
          throw e;
        }
      },
      close: () => source.close(),
    };
  }

  /** Wraps the resolver the handshakes call (the cache, when there is one). */
  instrumentLookups(resolver: KeyResolver): KeyResolver {
    return {
      resolve: (identity: Buffer) => {
        this.lookups++;
        return resolver.resolve(identity);
      },
      close: () => resolver.close(),
    };
  }

  /** The text exposition, as /metrics serves it. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
