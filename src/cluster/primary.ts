/**
 * The primary of `coap-psk serve --workers N`: binds one SO_REUSEPORT socket per worker and
 * keeps it (./sockets.ts), starts the workers with node:cluster (each the same `serve` command,
 * with its slot in COAP_PSK_WORKER_ID), starts a worker again when it dies (./restart-policy.ts),
 * serves /metrics (the workers' series summed, ./metrics-aggregation.ts) and /healthz (every
 * worker's own HSM probe), and passes SIGTERM / SIGINT (drain, then exit) and SIGHUP on to every
 * worker. It opens no PKCS#11 session and handles no datagram itself.
 *
 * On a cluster node (`clusterPort`) it binds one socket per worker on the cluster port too, and
 * passes each HELLO a worker took from a peer node on to the other workers (./node-routing.ts).
 *
 * Start-up: worker 1 first, the others once it serves, so that a bad setting the workers find
 * (PIN, token, key label) is reported once, by worker 1, and the primary exits with its status.
 */
import cluster, { type Worker } from 'node:cluster';
import type dgram from 'node:dgram';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HealthResult } from '../ops/health.js';
import { startOpsHttp, type OpsHttpServer } from '../ops/http.js';
import { cidGrant, relayCidForward } from './cid-routing.js';
import { primaryMetrics, type RegistryJson } from './metrics-aggregation.js';
import {
  WORKER_ID_ENV, isMessage, type Answer, type Ask, type ClusterSocketGrant, type ClusterSocketRequest, type PeerHello, type Serving,
  type SocketGrant, type SocketRequest,
} from './messages.js';
import { isPeerEntry } from './forward-link.js';
import { RestartPolicy } from './restart-policy.js';
import { bindReusePort, bindSocketGroup, closeSocket, holdWithoutReading, type SocketSizes } from './sockets.js';

export interface PrimaryOptions {
  workers: number;
  host: string;
  port: number;
  /** A cluster node's cluster port (docs/cluster.md): each worker gets a socket on it too. */
  clusterPort?: number;
  sizes: SocketSizes;
  metrics: { port?: number; host: string };
  logger: Logger;
  /** How long the workers may take to drain on SIGTERM; then they are killed. */
  shutdownTimeoutMs: number;
  /** How long /metrics and /healthz wait for a worker's answer. Default 2000 ms. */
  askTimeoutMs?: number;
}

export interface Primary {
  readonly port: number;
  /** Worker processes by slot (1..N), while they run. */
  readonly pids: ReadonlyMap<number, number>;
  /** Where /metrics and /healthz listen, with a metrics port. */
  readonly ops: { address: string; port: number } | undefined;
  /** Stops every worker (SIGTERM, then SIGKILL at the timeout), the sockets and /metrics. */
  stop(): Promise<void>;
}

type SocketKind = 'public' | 'cluster';

interface Slot {
  readonly id: number;
  /** The public port's socket, and the cluster port's on a cluster node. */
  readonly sockets: Partial<Record<SocketKind, dgram.Socket>>;
  held: boolean;
  worker: Worker | undefined;
  serving: boolean;
  startedAt: number;
  readonly policy: RestartPolicy;
  restartTimer: NodeJS.Timeout | undefined;
  /** Settled once, by the worker's first 'serving' or its exit before it. */
  started: Promise<boolean>;
}

/**
 * Starts the workers and resolves once every one of them serves; undefined (process.exitCode
 * set) when one could not start.
 */
export async function runPrimary(o: PrimaryOptions): Promise<Primary | undefined> {
  const log = o.logger;
  const askTimeoutMs = o.askTimeoutMs ?? 2000;
  const metrics = primaryMetrics(o.workers);
  const sockets = await bindSocketGroup(o.workers, o.port, o.host, o.sizes);
  const port = sockets[0]!.address().port;
  const clusterSockets = o.clusterPort === undefined ? [] : await bindClusterGroup(o, sockets);
  const slots: Slot[] = sockets.map((socket, i) => {
    const cluster = clusterSockets[i];
    const held = [socket, cluster].map((s) => s === undefined || holdWithoutReading(s)); // each one stopped
    return {
      id: i + 1, sockets: cluster ? { public: socket, cluster } : { public: socket }, held: held.every(Boolean),
      worker: undefined, serving: false, startedAt: 0, policy: new RestartPolicy(), restartTimer: undefined, started: Promise.resolve(false),
    };
  });
  if (slots.some((s) => !s.held)) log.warn('this Node.js does not let the primary keep the workers\' sockets: a restarted worker moves other workers\' peers');
  let phase: 'starting' | 'serving' | 'stopping' = 'starting';
  let askId = 0;
  const waiting = new Map<number, (value: unknown) => void>();
  const cid = cidGrant(o.workers);
  const hellos = new PeerHellos();
  const serving = (id: number) => {
    const s = slots[id - 1];
    return s?.serving ? s.worker : undefined;
  };

  const updateUp = () => metrics.workersUp.set(slots.filter((s) => s.serving).length);

  function fork(slot: Slot): void {
    slot.serving = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ [WORKER_ID_ENV]: String(slot.id) });
    slot.worker = worker;
    let settle!: (ok: boolean) => void;
    slot.started = new Promise<boolean>((r) => (settle = r));
    worker.on('message', (m: unknown) => {
      if (isMessage<SocketRequest>(m, 'coap-psk:socket-request')) void grant(slot, worker, 'public');
      else if (isMessage<ClusterSocketRequest>(m, 'coap-psk:cluster-socket-request') && o.clusterPort !== undefined) void grant(slot, worker, 'cluster');
      else if (isMessage<PeerHello>(m, 'coap-psk:peer-hello') && o.clusterPort !== undefined) hellos.relay(m, slots.filter((s) => s !== slot).map((s) => s.worker));
      else if (isMessage<Serving>(m, 'coap-psk:serving')) {
        slot.serving = true;
        updateUp();
        log.info({ worker: slot.id, workerPid: worker.process.pid }, 'worker serving');
        settle(true);
      } else if (isMessage<Answer>(m, 'coap-psk:answer')) {
        waiting.get(m.id)?.(m.value);
        waiting.delete(m.id);
      } else relayCidForward(m, slot.id, serving);
    });
    worker.on('exit', (code, signal) => {
      settle(false);
      if (slot.worker === worker) onExit(slot, code, signal);
    });
  }

  async function grant(slot: Slot, worker: Worker, kind: SocketKind): Promise<void> {
    try {
      const socket = (slot.sockets[kind] ??= await bindReusePort(kind === 'public' ? port : o.clusterPort!, o.host, o.sizes));
      const message: SocketGrant | ClusterSocketGrant = kind === 'public'
        ? { type: 'coap-psk:socket', cid }
        : { type: 'coap-psk:cluster-socket', workers: o.workers, peers: hellos.known() };
      worker.send(message, socket, () => {
        if (slot.held) return;
        slot.sockets[kind] = undefined; // handed over: the worker owns it now
        void closeSocket(socket);
      });
    } catch (e) {
      log.error({ worker: slot.id, err: (e as Error).message }, 'cannot bind a socket for the worker');
      worker.process.kill('SIGTERM');
    }
  }

  function onExit(slot: Slot, code: number | null, signal: string | null): void {
    slot.worker = undefined;
    slot.serving = false;
    updateUp();
    if (phase !== 'serving') return;
    const delayMs = slot.policy.next(Date.now() - slot.startedAt);
    log.warn({ worker: slot.id, code, signal, restartInMs: delayMs }, 'worker died; starting it again');
    metrics.restarts.inc({ worker: String(slot.id) });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (phase === 'serving') fork(slot);
    }, delayMs);
  }

  /** The worker's answer, or undefined when it is not serving or does not answer in time. */
  function ask(slot: Slot, what: Ask['what']): Promise<unknown> {
    const worker = slot.worker;
    if (!slot.serving || !worker) return Promise.resolve(undefined);
    const id = ++askId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(undefined);
      }, askTimeoutMs);
      waiting.set(id, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
      worker.send({ type: 'coap-psk:ask', id, what } satisfies Ask);
    });
  }

  async function health(): Promise<HealthResult> {
    const started = Date.now();
    const results = await Promise.all(slots.map(async (s) => ({ id: s.id, r: (await ask(s, 'health')) as HealthResult | undefined })));
    const bad = results.filter(({ r }) => !r?.ok).map(({ id, r }) => `worker ${id}: ${r ? r.detail : 'not serving'}`);
    return { ok: bad.length === 0, detail: bad.length === 0 ? 'ok' : bad.join('; '), ms: Date.now() - started };
  }

  async function renderMetrics(): Promise<string> {
    const answers = await Promise.all(slots.map((s) => ask(s, 'metrics')));
    return metrics.render(answers.filter((a): a is RegistryJson => Array.isArray(a)));
  }

  let ops: OpsHttpServer | undefined;
  let stopping: Promise<void> | undefined;
  const pids = new Map<number, number>();

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      phase = 'stopping';
      for (const s of slots) clearTimeout(s.restartTimer);
      const running = slots.map((s) => s.worker).filter((w): w is Worker => w !== undefined && w.process.exitCode === null && w.process.signalCode === null);
      const exits = running.map((w) => new Promise<number | null>((r) => w.once('exit', (code) => r(code))));
      for (const w of running) w.process.kill('SIGTERM');
      const deadline = setTimeout(() => {
        log.error({ timeoutMs: o.shutdownTimeoutMs }, 'workers took too long to stop; killing them');
        for (const w of running) w.process.kill('SIGKILL');
      }, o.shutdownTimeoutMs + 1000);
      const codes = await Promise.all(exits);
      clearTimeout(deadline);
      await ops?.close();
      await Promise.all(slots.flatMap((s) => Object.values(s.sockets).map(closeSocket)));
      if (codes.some((c) => c !== 0)) process.exitCode = 1;
    })();
    return stopping;
  }

  // Worker 1 first: a setting every worker would refuse is reported once.
  fork(slots[0]!);
  let ok = await slots[0]!.started;
  if (ok && slots.length > 1) {
    for (const s of slots.slice(1)) fork(s);
    ok = (await Promise.all(slots.slice(1).map((s) => s.started))).every(Boolean);
  }
  if (!ok) {
    await stop();
    process.exitCode = 1;
    return undefined;
  }
  phase = 'serving';

  if (o.metrics.port !== undefined) {
    try {
      ops = await startOpsHttp({ registry: metrics.registry, metrics: renderMetrics }, { check: health }, o.metrics.port, o.metrics.host);
    } catch (e) {
      await stop();
      throw new UserError(`metrics: cannot listen on ${o.metrics.host}:${o.metrics.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const primary: Primary = {
    port,
    get pids() {
      pids.clear();
      for (const s of slots) if (s.worker?.process.pid !== undefined) pids.set(s.id, s.worker.process.pid);
      return pids;
    },
    stop,
    ops: ops ? { address: ops.address, port: ops.port } : undefined,
  };
  return primary;
}

/** The cluster port's sockets, one per worker; the public ones are closed when they cannot be bound. */
async function bindClusterGroup(o: PrimaryOptions, sockets: dgram.Socket[]): Promise<dgram.Socket[]> {
  try {
    return await bindSocketGroup(o.workers, o.clusterPort!, o.host, o.sizes);
  } catch (e) {
    await Promise.all(sockets.map(closeSocket));
    throw new UserError(`config cluster.port: cannot listen on ${o.host}:${o.clusterPort} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/**
 * The HELLOs the workers took from peer nodes: passed on to the other workers at once, and the
 * newest per node kept (at most one per node id) for a worker that starts later.
 */
class PeerHellos {
  private readonly last = new Map<number, { address: string; port: number; atMs: number }>();

  relay(m: PeerHello, others: readonly (Worker | undefined)[]): void {
    if (!isPeerEntry(m)) return;
    this.last.set(m.node, { address: m.address, port: m.port, atMs: Date.now() });
    const hello: PeerHello = { type: 'coap-psk:peer-hello', node: m.node, address: m.address, port: m.port, ageMs: 0 };
    for (const w of others) if (w?.isConnected()) w.send(hello);
  }

  known(): PeerHello[] {
    const now = Date.now();
    return [...this.last].map(([node, h]) => ({ type: 'coap-psk:peer-hello', node, address: h.address, port: h.port, ageMs: now - h.atMs }));
  }
}

/** SIGTERM / SIGINT: drain every worker, then exit; SIGHUP: passed on to every worker. */
export function installPrimarySignals(primary: Primary, logger: Logger): void {
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down the workers');
    primary.stop().then(() => {
      logger.info('stopped');
      // Nothing is left to keep the process alive; this only guards against a stray handle.
      setTimeout(() => process.exit(), 2000).unref();
    }, (e: unknown) => {
      logger.error({ err: (e as Error).message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    const pids = [...primary.pids.values()];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGHUP');
      } catch {
        // died meanwhile: its replacement reads the deny list at start
      }
    }
    logger.info({ workers: pids.length }, 'SIGHUP passed to the workers');
  });
  // node's default for SIGUSR2 ends the process: here it is refused, with why (takeover.ts).
  process.on('SIGUSR2', () => logger.warn('SIGUSR2: graceful restart (serve --takeover) runs with --workers 1 only; ignored'));
}
