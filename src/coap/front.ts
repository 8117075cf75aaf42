/**
 * Wires a SecureEndpoint (the DTLS server) to node-coap and a Router.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import coap from 'coap';
import type { CoapServerOptions, IncomingMessage } from 'coap';
import { installReplyCache } from './reply-cache.js';
import { sendRepliesWithoutTimers } from './retry-send-fix.js';
import { Router } from './router.js';
import type { RouterLogger } from './router.js';
import { DtlsCoapSocket } from './transport.js';
import type { DroppedSend, DtlsCoapSocketOptions } from './transport.js';
import type { PeerIdentity, SecureEndpoint } from './types.js';

export interface CoapFrontOptions {
  /** Passed to node-coap's Server (piggybackReplyMs, cacheSize, ...). clientIdentifier is ours. */
  server?: Omit<CoapServerOptions, 'clientIdentifier' | 'proxy'>;
  socket?: DtlsCoapSocketOptions;
  /** Socket and server failures, undeliverable replies. Default: console. */
  logger?: RouterLogger;
  /** Replies kept for duplicate detection (src/coap/reply-cache.ts). Default 100,000. */
  replyCacheEntries?: number;
}

export interface CoapFront {
  server: coap.Server;
  socket: DtlsCoapSocket;
  /** Stops the node-coap server and detaches from the endpoint. Idempotent. */
  close(): Promise<void>;
}

/** node-coap computes the client identifier several times per request; the hex is made once per session. */
const identityHex = new WeakMap<PeerIdentity, string>();

export async function createCoapFront(
  endpoint: SecureEndpoint,
  router: Router,
  options: CoapFrontOptions = {},
): Promise<CoapFront> {
  const logger = options.logger ?? console;
  sendRepliesWithoutTimers((sock) => sock instanceof DtlsCoapSocket);
  const socket = new DtlsCoapSocket(endpoint, options.socket);
  const server = new coap.Server({
    ...options.server,
    // node-coap keys its reply cache (duplicate CONs) and block-wise state by this string.
    // With the identity in it, a new session on the same address and port (a rebooted device,
    // a NAT rebinding) can never be answered from another identity's cache.
    clientIdentifier: (req: IncomingMessage) => {
      const { address, port } = req.rsinfo;
      const peer = endpoint.peer(address, port);
      let who = peer ? identityHex.get(peer) : '-';
      if (who === undefined) {
        who = peer!.identityBytes.toString('hex');
        identityHex.set(peer!, who);
      }
      return `${who}@${address}:${port}`;
    },
  });
  installReplyCache(server, { maxEntries: options.replyCacheEntries, ttlMs: coap.parameters.exchangeLifetime * 1000 });
  keyBlock1ByRequest(server);
  server.on('request', (req: IncomingMessage, res) => {
    const peer = endpoint.peer(req.rsinfo.address, req.rsinfo.port);
    void router.handle(req, res, peer);
  });
  server.on('error', (err: unknown) => logger.error('coap: server error', err));
  socket.on('dropped', (d: DroppedSend) =>
    logger.error(`coap: datagram to ${d.address ?? '?'}:${d.port} dropped`, d.error),
  );
  await new Promise<void>((done, fail) => {
    server.listen(socket, (err?: Error) => (err ? fail(err) : done()));
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((done) => {
      // node-coap only closes sockets it created itself.
      server.close(() => socket.close(() => done()));
    });
    return closing;
  };
  return { server, socket, close };
}

/**
 * Mounts the routes of one module: its default export is `(router) => void | Promise<void>`.
 * Relative paths are taken from the working directory.
 */
export async function loadRoutes(file: string, router: Router): Promise<void> {
  const url = pathToFileURL(resolve(file)).href;
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new Error(`route file ${file}: cannot be loaded: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof mod.default !== 'function') {
    throw new Error(`route file ${file}: default export is not a function (router) => void`);
  }
  await (mod.default as (router: Router) => void | Promise<void>)(router);
}

interface CoapOption {
  name: string | number;
  value: unknown;
}
interface NodeCoapServerInternals {
  _toCacheKey(request: unknown, packet: { options?: CoapOption[]; code?: string }): string | null;
  _clientIdentifier(request: unknown): string;
}

/**
 * node-coap 1.5 reassembles Block1 uploads under (token, client) — but RFC 7959 lets a client
 * use a new token for every block, and libcoap does, so uploads from coap-client failed with
 * 5.00. Blocks of one body are tied by endpoint, method, Uri-Path and Request-Tag (RFC 9175)
 * instead. (A fix for node-coap upstream; until then it lives here.)
 */
function keyBlock1ByRequest(server: unknown): void {
  const s = server as NodeCoapServerInternals;
  if (typeof s._toCacheKey !== 'function' || typeof s._clientIdentifier !== 'function') return;
  const byToken = s._toCacheKey.bind(s);
  const hex = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : String(v));
  s._toCacheKey = (request, packet) => {
    const options = packet.options ?? [];
    if (!options.some((o) => o.name === 'Block1')) return byToken(request, packet);
    const path = options.filter((o) => o.name === 'Uri-Path').map((o) => hex(o.value)).join('/');
    const tag = options.find((o) => o.name === 'Request-Tag' || o.name === '292' || o.name === 292);
    return `block1/${packet.code ?? ''}/${path}/${tag ? hex(tag.value) : ''}/${s._clientIdentifier(request)}`;
  };
}
