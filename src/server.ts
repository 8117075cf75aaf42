/**
 * The whole server as one object: DTLS endpoint → key resolver → CoAP endpoint → router.
 * This is what `coap-psk serve` runs and what backend teams embed (`createServer`).
 *
 * The key path, from the handshake inwards:
 *   identity pattern (optional) → lookup counter → cache (optional) → derivation timer → `keys`
 * so that the metrics see both sides of the cache and the health probe reaches the HSM itself.
 */
import { DtlsServer, type DtlsListenOptions, type HandshakeEvent } from './dtls/server.js';
import type { DtlsServerConfig } from './dtls/config.js';
import type { HandshakeResult } from './dtls/server-handshake.js';
import type { DtlsSession } from './dtls/session.js';
import { CoapEndpoint } from './coap/endpoint.js';
import { decodeUtf8, IdentityPattern, mapIdentityResolver, peerIdentity } from './coap/identity-map.js';
import type { PskRefusal } from './dtls/psk.js';
import { pskLookupFromResolver } from './psk-lookup.js';
import { Router } from './coap/router.js';
import { CachingResolver, type CacheOptions } from './keys/cache.js';
import { DenyListResolver } from './keys/deny-list.js';
import type { KeyResolver } from './keys/types.js';
import { UserError } from './errors.js';
import { readFile } from 'node:fs/promises';
import { PeriodTicketKeys, parseTicketKeyFile } from './dtls/ticket-key-sources.js';
import { DEFAULT_DTLS_CONFIG } from './dtls/config.js';
import { TicketKeyRing } from './dtls/ticket-keys.js';
import { silentLogger, type Logger } from './log.js';
import { countCoapResponses, registerCoapStateMetrics } from './ops/coap-metrics.js';
import { HealthProbe } from './ops/health.js';
import { startOpsHttp, type OpsHttpServer } from './ops/http.js';
import { KeyLogWriter, keyLogWarning } from './ops/keylog.js';
import { ServerMetrics, type ServerMetricsOptions } from './ops/metrics.js';

export interface MetricsOptions extends ServerMetricsOptions {
  /** HTTP port of GET /metrics and GET /healthz; none: no listener (read `server.metrics`). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** How long /healthz waits for the test derivation. Default 2000 ms. */
  healthTimeoutMs?: number;
}

export interface CoapPskServerOptions {
  /**
   * Who knows the devices' keys: a PKCS#11 resolver, a software one. Give the uncached source
   * and `cache` to have the server put the cache in front of it (then the metrics count cache
   * hits and misses, and /healthz probes the source itself); a resolver that caches by itself
   * also works, but its hits are then counted as derivations.
   */
  keys: KeyResolver;
  /** A derived-key cache in front of `keys` (see CacheOptions). Default: none. */
  cache?: CacheOptions | false;
  /** A file of denied serials (one per line), checked in front of the cache; `server.reloadDenyList()` rereads it. */
  denyList?: string;
  /** Mounts the backend's routes on the router (GET /whoami and /.well-known/core are built in). */
  routes?: (router: Router) => void | Promise<void>;
  /** The CoAP message layer's bounds and timing (see CoapOptions). */
  coap?: CoapOptions;
  /** On close(), how long requests already received may take to be answered. Default 5000 ms. */
  drainTimeoutMs?: number;
  /** DTLS settings; see DtlsServerConfig for each one's meaning and default. */
  dtls?: Partial<DtlsServerConfig>;
  logger?: Logger;
  /**
   * Identity mapping: a regex with a named group `serial` (e.g. `^(?<tenant>[^/]+)/(?<serial>.+)$`).
   * Keys are derived from the serial; identities that do not match are refused; handlers see
   * `req.serial` and `req.identityParts`.
   */
  identity?: { pattern: string | RegExp };
  /** Prometheus metrics (always collected, in `server.metrics.registry`) and their HTTP port. */
  metrics?: MetricsOptions;
  /**
   * NSS key log file (CLIENT_RANDOM lines) for Wireshark: every session's master secret is
   * appended to it. Lab use only; a warning is logged when it is on.
   */
  keylog?: string;
  /**
   * A file of session ticket secrets (64 hex characters a line; the first seals, all open), so
   * that every process and node given the same file resumes the same tickets. Default: a random
   * secret per process (tickets resume only where they were issued). See docs/resumption.md.
   */
  ticketKeyFile?: string;
  /**
   * A block cipher over a key that only derives ticket secrets (in production a second HSM key,
   * `keys.ticketKeyLabel`): the ring rotates every ticket lifetime by itself, and every process
   * and node with the same key holds the same ring (PeriodTicketKeys). Closed with the server.
   * Mutually exclusive with ticketKeyFile.
   */
  ticketKeyCipher?: { encryptBlock(block: Buffer): Promise<Buffer>; close(): Promise<void> };
}

export interface CoapOptions {
  /**
   * Bytes of replies kept for CoAP duplicate detection over all sessions (a repeated CON gets
   * the same reply, its handler does not run again), oldest first out. Default 16 MiB: about
   * 160,000 small replies, at 10,000 requests/s 16 s of them (src/coap/dedup.ts).
   */
  replyCacheBytes?: number;
  /** Observe relations per DTLS session at most. Default 16. */
  maxObserveRelations?: number;
  /** Largest body a Block1 upload may reach (4.13 with Size1 past it). Default 1 MiB. */
  maxBlock1Body?: number;
  /** How long a CON request waits for its handler before an empty ACK (then a separate response). Default 50 ms. */
  piggybackMs?: number;
  /** ACK_TIMEOUT of our CON messages (separate responses, notifications). Default 2000 ms. */
  ackTimeoutMs?: number;
}

export interface CoapPskServer {
  readonly dtls: DtlsServer;
  readonly router: Router;
  /** The CoAP message layer: one state per DTLS session. */
  readonly coap: CoapEndpoint;
  readonly metrics: ServerMetrics;
  readonly health: HealthProbe;
  /** Where /metrics and /healthz listen, once listen() has run with a metrics port. */
  readonly ops: { address: string; port: number } | undefined;
  /**
   * Binds the UDP socket (and the metrics port); resolves with the address actually bound (port 0
   * picks one). `socketOptions`: SO_REUSEPORT, or a socket bound elsewhere (workers, src/cluster/).
   */
  listen(port?: number, host?: string, socketOptions?: DtlsListenOptions & { deferOps?: boolean }): Promise<{ address: string; port: number }>;
  /** Binds the metrics port after a listen() with `deferOps` (a takeover: the old process held it until then). */
  startOps(): Promise<void>;
  /** Rereads the deny list file (SIGHUP in `serve`); resolves with the number of serials, or undefined without one. */
  reloadDenyList(): Promise<number | undefined>;
  /** close_notify to every session, then the socket; the key resolver is closed too. Idempotent. */
  close(): Promise<void>;
  on(event: 'handshake', listener: (e: HandshakeEvent) => void): void;
}

export async function createServer(options: CoapPskServerOptions): Promise<CoapPskServer> {
  const logger = options.logger ?? silentLogger();
  const metrics = new ServerMetrics(options.metrics ?? {});
  const pattern = options.identity ? new IdentityPattern(options.identity.pattern) : undefined;
  // First: a bad ticket key file or ticket key fails the start before anything is opened.
  const ticketKeys = await openTicketKeys(options, logger);

  const source = options.keys;
  let resolver: KeyResolver = metrics.instrumentSource(source);
  if (options.cache) resolver = new CachingResolver(resolver, options.cache);
  let denyList: DenyListResolver | undefined;
  if (options.denyList !== undefined) {
    try {
      resolver = denyList = await DenyListResolver.open(resolver, options.denyList);
    } catch (e) {
      await resolver.close();
      throw e;
    }
  }
  resolver = metrics.instrumentLookups(resolver);
  if (pattern) resolver = mapIdentityResolver(resolver, pattern, () => metrics.identityRefused.inc());
  const keys = resolver;

  const health = new HealthProbe(source, options.metrics?.healthTimeoutMs ?? 2000, (r) => metrics.hsmUp.set(r.ok ? 1 : 0));
  const keylog = options.keylog ? new KeyLogWriter(options.keylog) : undefined;
  if (keylog) logger.warn({ keylog: keylog.path }, keyLogWarning(keylog.path));

  const dtls = new DtlsServer({
    ...options.dtls,
    pskLookup: pskLookupFromResolver(keys, (id) => refusalOf(id, pattern, denyList)),
    // A resumed handshake makes no key lookup: the deny list and the pattern are asked here.
    pskRefused: (id) => {
      const refusal = refusalOf(id, pattern, denyList);
      return refusal === 'unknown_psk_identity' ? undefined : refusal;
    },
    ...(ticketKeys ? { ticketKeys: ticketKeys.ring } : {}),
    logger,
  });
  metrics.attach(dtls);
  if (keylog) dtls.on('session', (_conn: unknown, r: HandshakeResult) => keylog.log(r));

  const router = new Router({ logger: routerLogger(logger) });
  countCoapResponses(router, metrics);
  await options.routes?.(router);

  const c = options.coap ?? {};
  const coap = new CoapEndpoint(router, {
    replyCacheBytes: c.replyCacheBytes,
    maxObserveRelations: c.maxObserveRelations,
    maxBlock1Body: c.maxBlock1Body,
    piggybackMs: c.piggybackMs,
    retransmit: c.ackTimeoutMs === undefined ? undefined : { ackTimeoutMs: c.ackTimeoutMs },
    logger: routerLogger(logger),
  });
  registerCoapStateMetrics(coap, metrics.registry);
  // The DTLS session object keys all CoAP state: a new handshake is a new, empty state.
  dtls.on('session-open', (s: DtlsSession) => coap.open(s, peerIdentity(s, pattern)));
  dtls.on('session-data', (s: DtlsSession, data: Buffer) => coap.receive(s, data));
  dtls.on('session-close', (s: DtlsSession) => coap.close(s, 'session-closed'));

  let ops: OpsHttpServer | undefined;
  let closing: Promise<void> | undefined;
  const startOps = async (): Promise<void> => {
    const m = options.metrics;
    if (m?.port === undefined || ops) return;
    const opsHost = m.host ?? '127.0.0.1';
    ops = await startOpsHttp(metrics, health, m.port, opsHost).catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`metrics: cannot listen on ${opsHost}:${m.port}: ${e.code ?? e.message}`);
    });
  };
  return {
    dtls,
    router,
    coap,
    metrics,
    health,
    get ops() {
      return ops ? { address: ops.address, port: ops.port } : undefined;
    },
    async listen(port = 5684, host = '0.0.0.0', socketOptions) {
      const bound = await dtls.listen(port, host, socketOptions);
      try {
        if (!socketOptions?.deferOps) await startOps();
      } catch (e) {
        coap.closeAll();
        await dtls.close();
        throw e;
      }
      return bound;
    },
    startOps,
    async reloadDenyList() {
      return denyList?.reload();
    },
    close() {
      closing ??= (async () => {
        // Graceful: no new handshake; every request already received is answered (bounded);
        // then close_notify to every session.
        dtls.stopAccepting();
        await router.drain(options.drainTimeoutMs ?? 5000);
        coap.closeAll();
        await dtls.close();
        await ops?.close();
        await keylog?.close();
        await ticketKeys?.close();
        await keys.close();
      })();
      return closing;
    },
    on(event, listener) {
      dtls.on(event, listener);
    },
  };
}

interface TicketKeys {
  ring(): TicketKeyRing;
  close(): Promise<void>;
}

/** The ticket keys of a file or of a ticket key cipher; undefined: DtlsServer's per-process random ones. */
async function openTicketKeys(options: CoapPskServerOptions, logger: Logger): Promise<TicketKeys | undefined> {
  const cipher = options.ticketKeyCipher;
  if (options.ticketKeyFile !== undefined) {
    if (cipher) throw new UserError('config dtls.ticketKeyFile: set either it or keys.ticketKeyLabel, not both');
    const ring = await readTicketKeyFile(options.ticketKeyFile);
    return { ring: () => ring, close: async () => {} };
  }
  if (!cipher) return undefined;
  const lifetimeMs = options.dtls?.ticketLifetimeMs ?? DEFAULT_DTLS_CONFIG.ticketLifetimeMs;
  const period = new PeriodTicketKeys((b) => cipher.encryptBlock(b), lifetimeMs);
  let ring = await period.update();
  let timer: NodeJS.Timeout | undefined;
  // At each period boundary (a second late, so the clock is surely past it); a failure keeps the
  // ring it has, which still opens every live ticket, and tries again in a minute.
  const schedule = (ms: number): void => {
    timer = setTimeout(() => {
      period.update().then(
        (r) => {
          ring = r;
          schedule(period.msUntilNextPeriod(Date.now()) + 1000);
        },
        (err: unknown) => {
          logger.error({ err: err instanceof Error ? err.message : String(err) }, 'ticket key rotation failed; keeping the current ticket keys');
          schedule(60_000);
        },
      );
    }, ms);
    timer.unref();
  };
  schedule(period.msUntilNextPeriod(Date.now()) + 1000);
  return {
    ring: () => ring,
    close: async () => {
      clearTimeout(timer);
      await cipher.close();
    },
  };
}

/** The ring of a ticket key file; a bad file fails the start with one line that names the setting, never a secret. */
async function readTicketKeyFile(file: string): Promise<TicketKeyRing> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`config dtls.ticketKeyFile: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const parsed = parseTicketKeyFile(text);
  if ('error' in parsed) throw new UserError(`config dtls.ticketKeyFile: ${file}: ${parsed.error}`);
  const ring = new TicketKeyRing(parsed.secrets);
  for (const s of parsed.secrets) s.fill(0);
  return ring;
}

/** Why no key was found for `identity`: the pattern refused it, the deny list has it, or neither. */
function refusalOf(identity: Buffer, pattern: IdentityPattern | undefined, denyList: DenyListResolver | undefined): PskRefusal {
  let serial = identity;
  if (pattern) {
    const text = decodeUtf8(identity);
    const parts = text === undefined ? undefined : pattern.match(text);
    if (!parts) return 'identity_pattern_mismatch';
    serial = Buffer.from(parts.serial, 'utf8');
  }
  return denyList?.denies(serial) ? 'identity_denied' : 'unknown_psk_identity';
}

function routerLogger(logger: Logger) {
  return {
    error: (message: string, error?: unknown) =>
      logger.error({ err: error instanceof Error ? error.message : error === undefined ? undefined : String(error) }, message),
  };
}
