/**
 * The whole server as one object: DTLS endpoint → key resolver → CoAP front → router.
 * This is what `coap-psk serve` runs and what backend teams embed (`createServer`).
 */
import { DtlsServer, type HandshakeEvent } from './dtls/server.js';
import type { DtlsServerConfig } from './dtls/config.js';
import { createCoapFront, type CoapFront } from './coap/front.js';
import { Router } from './coap/router.js';
import type { KeyResolver } from './keys/types.js';
import { silentLogger, type Logger } from './log.js';

export interface CoapPskServerOptions {
  /** Who knows the devices' keys: a PKCS#11 resolver, a software one, behind a cache or not. */
  keys: KeyResolver;
  /** Mounts the backend's routes on the router (GET /whoami and /.well-known/core are built in). */
  routes?: (router: Router) => void | Promise<void>;
  /** DTLS settings; see DtlsServerConfig for each one's meaning and default. */
  dtls?: Partial<DtlsServerConfig>;
  logger?: Logger;
}

export interface CoapPskServer {
  readonly dtls: DtlsServer;
  readonly router: Router;
  /** Binds the UDP socket; resolves with the address actually bound (port 0 picks one). */
  listen(port?: number, host?: string): Promise<{ address: string; port: number }>;
  /** close_notify to every session, then the socket; the key resolver is closed too. */
  close(): Promise<void>;
  on(event: 'handshake', listener: (e: HandshakeEvent) => void): void;
}

export async function createServer(options: CoapPskServerOptions): Promise<CoapPskServer> {
  const logger = options.logger ?? silentLogger();
  const dtls = new DtlsServer({ ...options.dtls, resolver: options.keys, logger });
  const router = new Router({ logger: routerLogger(logger) });
  await options.routes?.(router);
  let front: CoapFront | undefined;
  return {
    dtls,
    router,
    async listen(port = 5684, host = '0.0.0.0') {
      const bound = await dtls.listen(port, host);
      front = await createCoapFront(dtls, router, {
        logger: routerLogger(logger),
        socket: { type: host.includes(':') ? 'udp6' : 'udp4', localAddress: { ...bound, family: host.includes(':') ? 'IPv6' : 'IPv4' } },
      });
      return bound;
    },
    async close() {
      await front?.close();
      await dtls.close();
      await options.keys.close();
    },
    on(event, listener) {
      dtls.on(event, listener);
    },
  };
}

function routerLogger(logger: Logger) {
  return {
    error: (message: string, error?: unknown) =>
      logger.error({ err: error instanceof Error ? error.message : error === undefined ? undefined : String(error) }, message),
  };
}
