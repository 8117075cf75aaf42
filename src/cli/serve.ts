/**
 * `coap-psk serve`: the configuration from flags > environment > --config file > defaults
 * (src/config/index.ts), the key resolver behind a cache, optional backend routes from a module,
 * metrics and health on their own HTTP port, and a graceful stop on SIGTERM / SIGINT.
 */
import { openKeySource } from '../config/keys.js';
import type { KeyConfig } from '../config/keys.js';
import { printableConfig, resolveConfig, type ConfigSources } from '../config/index.js';
import { UserError } from '../errors.js';
import { loadRoutes } from '../coap/load-routes.js';
import { createServeLogger } from '../ops/logging.js';
import { createServer, type CoapPskServer } from '../server.js';
import type { Logger } from '../log.js';

export interface ServeOptions {
  /** Parsed flags by name (commander's camelCase or the flag's own spelling). */
  flags?: ConfigSources['flags'];
  /** --config FILE */
  configFile?: string;
  /** --print-config: print the effective configuration (secrets masked) and return. */
  printConfig?: boolean;
  /** The dev start script creates the development token when it is missing. */
  autoInitDev?: boolean;
  /** Where --print-config writes. Default stdout. */
  out?: (text: string) => void;
  /** Install the SIGTERM/SIGINT handlers that stop and exit the process. Default true. */
  handleSignals?: boolean;
}

/** How long a graceful stop may take before the process exits 1 anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

export async function runServe(options: ServeOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<CoapPskServer | undefined> {
  const config = resolveConfig({ flags: options.flags, env, file: options.configFile });
  if (options.printConfig) {
    (options.out ?? ((t) => process.stdout.write(t)))(`${JSON.stringify(printableConfig(config), null, 2)}\n`);
    return undefined;
  }
  const logger = createServeLogger(config.log.level, config.log.format);
  const source = await openKeySource(config.keys, { autoInitDev: options.autoInitDev });
  const { host, port } = config.listener;
  let server: CoapPskServer;
  try {
    server = await createServer({
      keys: source,
      cache: config.keys.cache.enabled === false ? false : config.keys.cache,
      denyList: config.keys.denyListFile,
      logger,
      dtls: config.dtls,
      identity: config.identityPattern ? { pattern: config.identityPattern } : undefined,
      metrics: config.metrics.port !== undefined ? { port: config.metrics.port, host: config.metrics.host } : {},
      keylog: config.keylog,
      coap: config.coap,
      routes: config.routes ? (router) => loadRoutes(config.routes!, router) : undefined,
    });
  } catch (e) {
    await source.close();
    if (e instanceof UserError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (config.keylog && err.syscall === 'open') throw new UserError(`config keylog.file: cannot open ${config.keylog} (${err.code})`);
    throw e;
  }
  let bound;
  try {
    bound = await server.listen(port, host);
  } catch (e) {
    await server.close();
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  logger.info(
    {
      host: bound.address,
      port: bound.port,
      keys: describeKeys(config.keys),
      ...(server.ops ? { metrics: `http://${server.ops.address}:${server.ops.port}/metrics` } : {}),
      ...(config.identityPattern ? { identityPattern: config.identityPattern } : {}),
    },
    'coap-psk serving CoAP over DTLS 1.2 PSK',
  );
  if (options.handleSignals !== false) installShutdown(server, logger);
  return server;
}

/** SIGTERM / SIGINT: close once, exit 0; a second signal or a stuck close exits 1 after the timeout. */
function installShutdown(server: CoapPskServer, logger: Logger): void {
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
    server.close().then(
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
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
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
