/**
 * Connection IDs across the workers of one primary (RFC 9146; docs/graceful-restart.md). The
 * CIDs a worker issues carry its slot as their route (masked, src/dtls/cid-factory.ts, with a
 * secret the primary draws at start and hands to every worker with its socket). When a device's
 * address or port changes, the kernel's SO_REUSEPORT hash may pick another worker; that worker
 * finds no session for the CID, reads the owner's slot from it and passes the datagram to the
 * primary, which hands it to the owner. The owner authenticates the record, updates the peer
 * address (section 6) and answers through its own socket, bound to the same port, so the device
 * sees the same server address and port.
 *
 * The new 4-tuple keeps hashing to the other worker, so every later datagram of that device
 * takes this IPC hop too (counted in coap_psk_cid_forwarded_total); moving the session to that
 * worker is the later improvement. Bounds: only tls12_cid records whose route names another
 * slot of the group are passed on (the primary drops those for a slot not serving), the rest are
 * dropped; a forwarded datagram is never forwarded again. A forged record with a valid route
 * costs one IPC hop and is then dropped by the owner, which alone can authenticate it.
 *
 * On a cluster node (node-routing.ts) the route and its secret are the node's, and the hand-over
 * here is its second hop: passToWorker and serveDelivered carry the forwarding node (`via`).
 */
import { randomBytes } from 'node:crypto';
import type { Worker } from 'node:cluster';
import { Counter } from 'prom-client';
import type { CoapPskServer } from '../server.js';
import type { Logger } from '../log.js';
import { isMessage, type CidDeliver, type CidForward, type SocketGrant } from './messages.js';

/** Hands a datagram to worker `slot` of this group; `via`: the node it came through. */
export type PassToWorker = (slot: number, datagram: Buffer, address: string, port: number, via?: number) => void;

/** Route bytes for N slots: one byte up to 255 workers, two beyond. */
export function cidRouteBytes(workers: number): number {
  return workers <= 0xff ? 1 : 2;
}

/** In the primary: the grant's CID part, drawn once per primary run. */
export function cidGrant(workers: number): NonNullable<SocketGrant['cid']> {
  return { secret: randomBytes(32).toString('base64'), routeBytes: cidRouteBytes(workers), workers };
}

/**
 * In the primary: a worker's CidForward, handed to the worker its route names when that one
 * serves and is not the sender; anything else is dropped.
 */
export function relayCidForward(m: unknown, from: number, target: (slot: number) => Worker | undefined): void {
  if (!isMessage<CidForward>(m, 'coap-psk:cid-forward')) return;
  if (!Number.isInteger(m.route) || m.route === from || typeof m.data !== 'string' || typeof m.address !== 'string' || !Number.isInteger(m.port)) return;
  const via = Number.isInteger(m.via) ? { via: m.via } : {};
  target(m.route)?.send({ type: 'coap-psk:cid-deliver', data: m.data, address: m.address, port: m.port, ...via } satisfies CidDeliver);
}

/** In a worker: the hand-over to another worker through the primary, counted by this one. */
export function passToWorker(server: CoapPskServer, slot: number): PassToWorker {
  const forwarded = new Counter({
    name: 'coap_psk_cid_forwarded_total',
    help: 'Datagrams with another worker\'s Connection ID passed to that worker, by the worker that passed them',
    labelNames: ['worker'],
    registers: [server.metrics.registry],
  });
  // The series of this worker, looked up once: inc() with a label object hashes it per call.
  const forwardedHere = forwarded.labels(String(slot));
  return (route, datagram, address, port, via) => {
    forwardedHere.inc();
    const m: CidForward = { type: 'coap-psk:cid-forward', route, data: datagram.toString('base64'), address, port };
    if (via !== undefined) m.via = via;
    process.send?.(m);
  };
}

/** In a worker: what the primary delivers from the other workers, served as forwarded datagrams. */
export function serveDelivered(server: CoapPskServer): void {
  process.on('message', (m: unknown) => {
    if (!isMessage<CidDeliver>(m, 'coap-psk:cid-deliver') || typeof m.data !== 'string') return;
    server.dtls.onDatagram(Buffer.from(m.data, 'base64'), m.address, m.port, true, Number.isInteger(m.via) ? m.via : undefined);
  });
}

/**
 * In a worker, before listen(): its CIDs carry `slot`, other slots' CID records go to the
 * primary, and datagrams the primary delivers are served as forwarded ones.
 */
export function routeWorkerCids(server: CoapPskServer, slot: number, grant: SocketGrant['cid'], log: Logger): void {
  if (!grant) return;
  const pass = passToWorker(server, slot);
  const ok = server.dtls.routeCids({
    route: slot,
    routeBytes: grant.routeBytes,
    secret: Buffer.from(grant.secret, 'base64'),
    foreign(route, datagram, address, port) {
      // A CID no worker of this group issued (random, forged, or of another node): dropped here.
      if (route < 1 || route > grant.workers) return false;
      pass(route, datagram, address, port);
      return true;
    },
  });
  if (!ok) {
    log.info('no CID routing between workers (CID off, or the CID length leaves no room for the route): a device whose port changes may reach another worker and handshake again');
    return;
  }
  serveDelivered(server);
}
