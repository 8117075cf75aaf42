/**
 * `coap-psk serve`: the key configuration from COAP_PSK_* (see src/config/keys.ts), the
 * listener from flags or COAP_PSK_HOST / COAP_PSK_PORT, optional backend routes from a module.
 */
import { loadKeyConfig, createResolver } from '../config/keys.js';
import { UserError } from '../errors.js';
import { createLogger } from '../log.js';
import { loadRoutes } from '../coap/front.js';
import { createServer } from '../server.js';

export interface ServeOptions {
  host?: string;
  port?: string | number;
  routesFile?: string;
  logLevel?: string;
  /** The dev start script creates the development token when it is missing. */
  autoInitDev?: boolean;
}

export async function runServe(options: ServeOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const host = options.host ?? env.COAP_PSK_HOST ?? '0.0.0.0';
  const port = parsePort(options.port ?? env.COAP_PSK_PORT ?? '5684', options.port !== undefined ? '--port' : 'COAP_PSK_PORT');
  const logger = createLogger(options.logLevel ?? env.COAP_PSK_LOG_LEVEL ?? 'info');
  const keyConfig = loadKeyConfig(env);
  const keys = await createResolver(keyConfig, { autoInitDev: options.autoInitDev });
  const routesFile = options.routesFile;
  const server = await createServer({
    keys,
    logger,
    routes: routesFile ? (router) => loadRoutes(routesFile, router) : undefined,
  });
  let bound;
  try {
    bound = await server.listen(port, host);
  } catch (e) {
    await keys.close();
    throw new UserError(`cannot listen on ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  logger.info({ host: bound.address, port: bound.port, keys: describeKeys(keyConfig) }, 'coap-psk serving CoAP over DTLS 1.2 PSK');
  const stop = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await server.close();
    logger.flush?.();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

function parsePort(value: string | number, name: string): number {
  const s = String(value);
  if (!/^\d+$/.test(s) || Number(s) > 65535) throw new UserError(`${name} must be a UDP port from 0 to 65535 (got "${s}")`);
  return Number(s);
}

/** What the log may say about the keys: where they come from, never what they are. */
function describeKeys(c: ReturnType<typeof loadKeyConfig>): Record<string, unknown> {
  if (c.mode === 'software') return { mode: 'software', encoding: c.encoding };
  return { mode: 'pkcs11', module: c.modulePath, token: c.tokenLabel, keyLabels: c.keyLabels, encoding: c.encoding };
}
