/**
 * `coap-psk serve`: the configuration from flags > environment > --config file > defaults
 * (src/config/index.ts), the key resolver behind a cache, optional backend routes from a module,
 * metrics and health on their own HTTP port, and a graceful stop on SIGTERM / SIGINT or when
 * the parent process goes away (a wrapper such as npm or npx killed without passing the signal on
 * must not leave the server holding its port).
 */
import { openKeySource, openTicketKeyCipher } from '../config/keys.js';
import type { KeyConfig } from '../config/keys.js';
import { printableConfig, resolveConfig, type ConfigSources } from '../config/index.js';
import { UserError } from '../errors.js';
import { loadRoutesModule } from './routes-loader.js';
import { firstRunHint } from './first-run.js';
import { createServeLogger } from '../ops/logging.js';
import { createServer, type CoapPskServer } from '../server.js';
import { childLogger, type Logger } from '../log.js';
import { DEFAULT_DTLS_CONFIG } from '../dtls/config.js';
import { installPrimarySignals, runPrimary } from '../cluster/primary.js';
import { reusePortSupported, workerCount } from '../cluster/support.js';
import { clusterWorker, type WorkerRole } from '../cluster/worker.js';
import { assertPortFree, listenByTakeover, offerTakeoverFrom, restartByTakeover } from '../cluster/takeover-serve.js';
import { holdForTakeover } from '../cluster/takeover.js';
import { holdPidFile, writePidFile } from './pid-file.js';
import { nodeSettings, type NodeSettings } from '../cluster/node-settings.js';
import { startNodeRouting, type NodeRouting } from '../cluster/node-routing.js';

export interface ServeOptions {
  /** Parsed flags by name (commander's camelCase or the flag's own spelling). */
  flags?: ConfigSources['flags'];
  /** --config FILE */
  configFile?: string;
  /** --print-config: print the effective configuration (secrets masked) and return. */
  printConfig?: boolean;
  /** The dev start script creates the development token when it is missing. */
  autoInitDev?: boolean;
  /** Where --print-config and the first-run hint write. Default stdout. */
  out?: (text: string) => void;
  /** Install the SIGTERM/SIGINT handlers that stop and exit the process. Default true. */
  handleSignals?: boolean;
  /**
   * --takeover: take the established sessions and the port over from the server running with
   * the same listener (graceful restart, src/cluster/takeover.ts); that one then exits.
   */
  takeover?: boolean;
}

/** How long a graceful stop may take before the process exits 1 anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

export async function runServe(options: ServeOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<CoapPskServer | undefined> {
  const config = resolveConfig({ flags: options.flags, env, file: options.configFile });
  if (options.printConfig) {
    (options.out ?? ((t) => process.stdout.write(t)))(`${JSON.stringify(printableConfig(config), null, 2)}\n`);
    return undefined;
  }
  // --workers N: this process becomes their primary; each worker runs this function again.
  const worker = clusterWorker();
  const workers = workerCount(config.raw.listener.workers, config.origins.get('listener.workers'));
  if (options.takeover && (worker || workers > 1)) throw new UserError('--takeover: graceful restart runs with --workers 1 only (for now)');
  // Node forwarding (cluster.port): what it needs is checked here, at start, by the primary too.
  const node = await nodeSettings(config, workers);
  if (!worker && workers > 1) {
    node?.key.fill(0); // the primary forwards nothing itself: each worker reads the key file
    await servePrimary(config, workers, node?.port, options.handleSignals !== false);
    return undefined;
  }
  // A worker that cannot start must end: the cluster channel alone would keep it alive.
  return serveOne(config, options, worker, node).catch((e: unknown) => {
    worker?.release();
    node?.key.fill(0);
    throw e;
  });
}

/** One server: the whole of `serve` without workers, or one worker of them; `node`: a cluster node. */
async function serveOne(config: ReturnType<typeof resolveConfig>, options: ServeOptions, worker: WorkerRole | undefined, node: NodeSettings | undefined): Promise<CoapPskServer> {
  // npm start serves hex keys unless told otherwise: what coap-client -k, the lab's tool, takes.
  if (options.autoInitDev && config.keys.mode === 'pkcs11' && config.keys.devDefault && !config.origins.has('keys.encoding')) config.keys.encoding = 'hex';
  // Before the token is opened, so that a bad routes file fails the start at once.
  const mountRoutes = config.routes ? await loadRoutesModule(config.routes) : undefined;
  const baseLogger = createServeLogger(config.log.level, config.log.format);
  const logger = worker ? worker.logger(baseLogger) : baseLogger;
  const source = await openKeySource(config.keys, { autoInitDev: options.autoInitDev });
  const ticketKeyCipher = config.ticketKeyLabel === undefined ? undefined : await openTicketKeyCipher(config.keys, config.ticketKeyLabel).catch(async (e: unknown) => {
    await source.close();
    throw e;
  });
  const print = options.out ?? ((t: string) => process.stdout.write(t));
  const { host, port } = config.listener;
  // Workers leave the PID file to their primary: the supervisor's main process.
  const pidFile = worker ? undefined : config.listener.pidFile;
  let server: CoapPskServer;
  try {
    server = await createServer({
      keys: source,
      cache: config.keys.cache.enabled === false ? false : config.keys.cache,
      denyList: config.keys.denyListFile,
      logger,
      dtls: config.dtls,
      identity: config.identityPattern ? { pattern: config.identityPattern } : undefined,
      metrics: !worker && config.metrics.port !== undefined ? { port: config.metrics.port, host: config.metrics.host } : {},
      keylog: config.keylog,
      ticketKeyFile: config.ticketKeyFile,
      ticketKeyCipher,
      coap: config.coap,
      routes: mountRoutes,
    });
  } catch (e) {
    await source.close();
    await ticketKeyCipher?.close();
    if (e instanceof UserError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (config.keylog && err.syscall === 'open') throw new UserError(`config keylog.file: cannot open ${config.keylog} (${err.code})`);
    throw e;
  }
  // A single process that handles its signals offers its sessions to a `--takeover` successor,
  // which needs this socket (and a cluster node's cluster port) bound with SO_REUSEPORT (Node >= 22.12).
  const offers = !worker && options.handleSignals !== false && port !== 0 && reusePortSupported();
  let bound;
  let routing: NodeRouting | undefined;
  try {
    // Before the public port: its first record may already need the route. A successor's link
    // may get records of the sessions before they are here: they wait for them (takeover.ts).
    if (node && options.takeover) holdForTakeover(server.dtls);
    if (node) routing = await startNodeRouting(server, node, host, logger, worker ? await worker.nodeWorker(server) : undefined, options.takeover ? 'join' : offers ? 'offer' : undefined);
    // A successor names itself in the PID file before it says ready: before the old one exits.
    if (options.takeover) bound = await listenByTakeover(server, host, port, logger, () => pidFile && holdPidFile(pidFile), routing);
    else if (offers) {
      await assertPortFree(host, port);
      bound = await server.listen(port, host, { reusePort: true });
    } else {
      const socket = worker ? await worker.socket() : undefined;
      if (!node) worker?.routeCids(server, logger); // a cluster node's workers route by the node's CIDs
      bound = await server.listen(port, host, socket ? { socket } : undefined);
    }
  } catch (e) {
    await server.close();
    await routing?.close();
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const hint = code === 'EADDRINUSE' ? ` (another server already listens on udp/${port}: stop it, or choose another port with --port / COAP_PSK_PORT)` : '';
    throw new UserError(`cannot listen on ${host}:${port}: ${code ?? (e as Error).message}${hint}`);
  }
  // Signals are handled before the "serving" line: whoever reads it as ready may press Ctrl-C.
  // Once the port is ours: a second start that fails EADDRINUSE never touches the running one's file.
  if (pidFile && !options.takeover) {
    try {
      holdPidFile(pidFile);
    } catch (e) {
      await server.close();
      throw e;
    }
  }
  // A takeover that failed half-way: the successor may have named itself there; this one serves on.
  if (offers) await offerTakeoverFrom(server, host, port, logger, () => exit(logger, 0), () => {
    if (pidFile) writePidFile(pidFile);
  }, routing);
  if (options.handleSignals !== false) installShutdown(server, logger, offers, options.takeover === true, routing);
  logger.info(
    {
      host: bound.address,
      port: bound.port,
      keys: describeKeys(config.keys),
      ...(server.ops ? { metrics: `http://${server.ops.address}:${server.ops.port}/metrics` } : {}),
      ...(config.identityPattern ? { identityPattern: config.identityPattern } : {}),
    },
    worker ? 'worker serving' : 'coap-psk serving CoAP over DTLS 1.2 PSK',
  );
  worker?.serving(server, bound.port);
  if (options.autoInitDev && config.keys.mode === 'pkcs11' && config.keys.devDefault) {
    const hint = await firstRunHint(source, config.keys.encoding, bound);
    // Last on the screen, after the "serving" lines that pino-pretty writes from its worker
    // thread: the flush hands them over, the short wait lets the worker print them (cosmetic).
    await new Promise<void>((done) => logger.flush(() => done()));
    await new Promise((done) => setTimeout(done, 250).unref());
    print(`${hint}\n`);
  }
  return server;
}

/** The primary of `--workers N` (src/cluster/primary.ts): it binds, the workers serve. */
async function servePrimary(config: ReturnType<typeof resolveConfig>, workers: number, clusterPort: number | undefined, handleSignals: boolean): Promise<void> {
  const logger = childLogger(createServeLogger(config.log.level, config.log.format), { role: 'primary' });
  const { host, port } = config.listener;
  const primary = await runPrimary({
    workers, host, port, clusterPort, logger, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    sizes: {
      recvBufferSize: config.dtls.recvBufferSize ?? DEFAULT_DTLS_CONFIG.recvBufferSize,
      sendBufferSize: config.dtls.sendBufferSize ?? DEFAULT_DTLS_CONFIG.sendBufferSize,
    },
    metrics: config.metrics,
  }).catch((e: NodeJS.ErrnoException) => {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot listen on ${host}:${port}: ${e.code ?? e.message}`);
  });
  if (!primary) return; // a worker could not start; it said why, and the exit status is set
  if (config.listener.pidFile) holdPidFile(config.listener.pidFile);
  if (handleSignals) installPrimarySignals(primary, logger);
  logger.info(
    { host, port: primary.port, workers, ...(primary.ops ? { metrics: `http://${primary.ops.address}:${primary.ops.port}/metrics` } : {}) },
    'coap-psk serving CoAP over DTLS 1.2 PSK',
  );
}

/** SIGTERM / SIGINT: close once, exit 0; a second signal or a stuck close exits 1 after the timeout. */
function installShutdown(server: CoapPskServer, logger: Logger, offersTakeover: boolean, tookOver: boolean, routing: NodeRouting | undefined): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'already shutting down');
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown took too long; exiting');
      exit(logger, 1);
    }, SHUTDOWN_TIMEOUT_MS);
    // The cluster port last: the close_notify of a session backwarded through another node goes by it.
    server.close().then(() => routing?.close()).then(
      () => {
        clearTimeout(deadline);
        logger.info('stopped');
        exit(logger, 0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
        exit(logger, 1);
      },
    );
  };
  // SIGHUP rereads the deny list; a failed reload keeps the previous list.
  process.on('SIGHUP', () => {
    server.reloadDenyList().then(
      (n) => logger.info({ denied: n ?? 0 }, n === undefined ? 'SIGHUP: no deny list configured' : 'deny list reloaded'),
      (err: NodeJS.ErrnoException) => logger.error({ code: err.code ?? 'error' }, 'deny list reload failed; keeping the previous list'),
    );
  });
  // SIGUSR2: graceful restart, a `serve --takeover` child with this process's argv and environment.
  process.on('SIGUSR2', () => {
    if (offersTakeover) restartByTakeover(logger);
    else logger.warn('SIGUSR2: graceful restart unavailable here (needs Node.js 22.12+ for dgram reusePort, a fixed listener port, and --workers 1); ignored');
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A successor's parent is the server it replaced, which exits by design.
  if (!tookOver) watchParent(() => stop('parent exited'));
}

/**
 * Linux has no portable way for node to ask for a signal when its parent dies (prctl
 * PR_SET_PDEATHSIG is not exposed), so the parent pid is polled: when the parent exits, the
 * process is re-parented (to 1 or a subreaper) and process.ppid changes. Started by init or a
 * supervisor directly (ppid 1), there is nothing to watch.
 */
const PARENT_POLL_MS = 1000;

function watchParent(onGone: () => void): void {
  const parent = process.ppid;
  if (parent <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, PARENT_POLL_MS);
  timer.unref();
}

/** Exits once the log lines are out (pino writes asynchronously), or after half a second. */
function exit(logger: Logger, code: number): void {
  const fallback = setTimeout(() => process.exit(code), 500);
  logger.flush(() => {
    clearTimeout(fallback);
    process.exit(code);
  });
}

/** What the log may say about the keys: where they come from, never what they are. */
function describeKeys(c: KeyConfig): Record<string, unknown> {
  if (c.mode === 'software') return { mode: 'software', encoding: c.encoding };
  return { mode: 'pkcs11', module: c.modulePath, token: c.tokenLabel, keyLabels: c.keyLabels, encoding: c.encoding };
}
