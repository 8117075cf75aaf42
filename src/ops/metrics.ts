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
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DtlsServer, HandshakeEvent } from '../dtls/server.js';
import { HANDSHAKE_FAILURES } from '../dtls/reasons.js';
import type { KeyResolver, PskCandidate } from '../keys/types.js';

const PREFIX = 'coap_psk_';
/** The reason label: one of the DTLS layer's fixed codes (src/dtls/reasons.ts), so the label set is bounded. */
const FAILURE_LABELS: ReadonlySet<string> = new Set(HANDSHAKE_FAILURES);

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
  readonly handshakeDuration: Histogram<'result'>;
  readonly hsmDuration: Histogram<'result'>;
  readonly hsmErrors: Counter;
  readonly keyLookups: Counter;
  readonly cacheHits: Counter;
  readonly cacheMisses: Counter;
  readonly identityRefused: Counter;
  readonly coapRequests: Counter<'method' | 'route' | 'code'>;
  readonly hsmUp: Gauge;
  private lookups = 0;
  private derivations = 0;
  private dtls: DtlsServer | undefined;

  constructor(options: ServerMetricsOptions = {}) {
    const registers = [(this.registry = options.registry ?? new Registry())];
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    const self = this;
    this.handshakes = new Counter({
      name: `${PREFIX}handshakes_total`, help: 'DTLS handshakes finished, by result and cipher suite', labelNames: ['result', 'suite'], registers,
    });
    this.handshakeFailures = new Counter({
      name: `${PREFIX}handshake_failures_total`, help: 'Failed DTLS handshakes by reason', labelNames: ['reason'], registers,
    });
    this.handshakeDuration = new Histogram({
      name: `${PREFIX}handshake_duration_seconds`, help: 'DTLS handshake duration, from the first verified ClientHello', labelNames: ['result'], registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.hsmDuration = new Histogram({
      name: `${PREFIX}hsm_derivation_duration_seconds`, help: 'Key derivations by the key source (HSM), by result (ok, unknown, error)', labelNames: ['result'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.hsmErrors = new Counter({ name: `${PREFIX}hsm_derivation_errors_total`, help: 'Key derivations that failed (HSM fault, timeout)', registers });
    this.keyLookups = new Counter({ name: `${PREFIX}key_lookups_total`, help: 'Key lookups by handshakes (in front of the cache)', registers });
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
    new Counter({
      name: `${PREFIX}datagrams_total`, help: 'UDP datagrams received', registers,
      collect() {
        this.reset();
        this.inc(self.dtls?.stats.datagrams ?? 0);
      },
    });
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
    this.handshakes.inc({ result: e.result, suite: e.cipherSuite ?? 'none' });
    this.handshakeDuration.observe({ result: e.result }, e.durationMs / 1000);
    if (e.result === 'failed') this.handshakeFailures.inc({ reason: this.reasonLabel(e.reason) });
  }

  private reasonLabel(reason: string | undefined): string {
    return reason !== undefined && FAILURE_LABELS.has(reason) ? reason : 'other';
  }

  /** Wraps the uncached key source: every call is a derivation (a cache miss). */
  instrumentSource(source: KeyResolver): KeyResolver {
    return {
      resolve: async (identity: Buffer): Promise<PskCandidate[]> => {
        this.derivations++;
        const end = this.hsmDuration.startTimer();
        try {
          const candidates = await source.resolve(identity);
          end({ result: candidates.length > 0 ? 'ok' : 'unknown' });
          return candidates;
        } catch (e) {
          end({ result: 'error' });
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
        this.keyLookups.inc();
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
