/**
 * What the primary and its workers say to each other over the cluster IPC channel. Every
 * message's type starts with `coap-psk:`, apart from node:cluster's own and prom-client's.
 */
import type { PeerEntry } from './forward-link.js';

/** Worker → primary: the key source is open, send the socket. */
export interface SocketRequest { type: 'coap-psk:socket-request' }
/**
 * Primary → worker, with the bound dgram socket as the message's handle, and the group's CID
 * route mask secret (base64, one per primary run; ./cid-routing.ts).
 */
export interface SocketGrant { type: 'coap-psk:socket'; cid?: { secret: string; routeBytes: number; workers: number } }
/**
 * Worker → primary: a tls12_cid record whose CID names worker `route` (base64 datagram). `via`:
 * on a cluster node, the node that forwarded it here (node-routing.ts), for the owner's replies.
 */
export interface CidForward { type: 'coap-psk:cid-forward'; route: number; data: string; address: string; port: number; via?: number }
/** Primary → the worker a CidForward names: the datagram, to be served as if its socket read it. */
export interface CidDeliver { type: 'coap-psk:cid-deliver'; data: string; address: string; port: number; via?: number }
/** Worker → primary, on a cluster node: the key source is open, send the cluster port's socket. */
export interface ClusterSocketRequest { type: 'coap-psk:cluster-socket-request' }
/**
 * Primary → worker, with the socket bound on the cluster port for its slot as the handle: how many
 * workers the node runs, and the HELLOs its workers took so far (node-routing.ts).
 */
export interface ClusterSocketGrant { type: 'coap-psk:cluster-socket'; workers: number; peers: PeerHello[] }
/**
 * Worker → primary → the other workers: a HELLO this node took from peer `node`, `ageMs` ago
 * (0 when it is passed on at once; more when the primary replays it to a starting worker).
 */
export interface PeerHello extends PeerEntry { type: 'coap-psk:peer-hello' }
/** Worker → primary: serving on the socket. */
export interface Serving { type: 'coap-psk:serving'; port: number }
/** Primary → worker: a question answered by an Answer with the same id. */
export interface Ask { type: 'coap-psk:ask'; id: number; what: 'metrics' | 'health' }
/** Worker → primary. `value`: prom-client's getMetricsAsJSON() or a HealthResult. */
export interface Answer { type: 'coap-psk:answer'; id: number; value: unknown }

/** The worker's slot number, 1..N, given by the primary in the environment. */
export const WORKER_ID_ENV = 'COAP_PSK_WORKER_ID';

export function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}
