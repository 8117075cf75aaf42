/**
 * Connection IDs across the nodes of a cluster (docs/cluster.md): the node-level sibling of
 * cid-routing.ts. The CIDs a node issues carry its route, masked with a key every node derives
 * from the cluster key, so any node and any worker reads any CID's owner with one HMAC and no
 * table:
 *
 *   route (16 bits) = node id (10 bits) ‖ worker id (6 bits: 0 for a node of one process,
 *                     the worker's slot 1..63 for a node of --workers N)
 *
 * A tls12_cid record whose CID names another node and no session here goes, whole, in a FORWARD
 * to that node's cluster port (forward-link.ts), with the device's address; one naming a node
 * not in the peer table is dropped, and the device handshakes again once it gives up. One that
 * names another worker of this node goes to it through the primary (cid-routing.ts). The owner
 * serves a FORWARD as a datagram from the device, marked as having come through the sender, so
 * the session's replies go back to it in a BACKWARD (the default: a load balancer that NATs
 * un-NATs only the flow it made, the receiving node's) and it sends them from its own public
 * socket; with backward off, the owner answers from its own socket (direct server return).
 *
 * On a node of several workers every worker has a socket on the cluster port (bound by the
 * primary per slot, as the public ones) and a link of its own. A FORWARD reaches whichever worker
 * the kernel picks: it serves it when its CID names that worker, else hands it to the worker it
 * names, through the primary, with the sender node as `via`; a BACKWARD reaches any worker, which
 * sends it from its public socket (the same address and port as every other worker's).
 *
 * No loop: a datagram from the public port is forwarded at most once and never to this node;
 * a FORWARD is served here, handed to the worker its CID names or dropped, never forwarded again
 * by the link (onDatagram's `forwarded`, for a hand-over too), and one whose CID does not name
 * this node is refused; a BACKWARD only ever goes to its device. The longest path is device →
 * receiving worker → owner node's worker → owning worker, and back the same way.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { Counter, type Registry } from 'prom-client';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CoapPskServer } from '../server.js';
import { peekCid } from '../dtls/cid-record.js';
import { ForwardLink, isPeerEntry } from './forward-link.js';
import { deriveClusterKey, type DeviceAddress, type ForwardMessage } from './forward-wire.js';
import type { PassToWorker } from './cid-routing.js';
import type { PeerHello } from './messages.js';
import type { NodeSettings } from './node-settings.js';
import { assertPortFree } from './takeover-serve.js';

export const NODE_ROUTE_BYTES = 2;
const WORKER_BITS = 6;
const WORKER_MASK = (1 << WORKER_BITS) - 1;

/** Workers of a node the route can name: slots 1..63 (0 is a node of one process). */
export const MAX_NODE_WORKERS = WORKER_MASK;

/** The route of a node's CIDs (worker 0: the node runs one process). */
export function nodeRoute(nodeId: number, worker = 0): number {
  return (nodeId << WORKER_BITS) | worker;
}

/** A node of --workers N: this worker's part (src/cluster/worker.ts). */
export interface NodeWorker {
  /** 1..count: the worker bits of this worker's CIDs. */
  readonly slot: number;
  readonly count: number;
  /** The cluster port's socket the primary bound for this slot. */
  readonly socket: dgram.Socket;
  /** The HELLOs the node's other workers took before this one started. */
  readonly peers: readonly PeerHello[];
  pass: PassToWorker;
  /** Tells the other workers of a HELLO this one took. */
  heard(node: number, from: DeviceAddress): void;
  /** The HELLOs the other workers take from now on. */
  onHeard(listener: (hello: PeerHello) => void): void;
}

export interface NodeRouting {
  readonly link: ForwardLink;
  /** The peers that are up (node id → address:port, their HELLOs' age), for a takeover successor. */
  peerTable(): Buffer;
  /** A predecessor's peerTable(), entered as HELLOs heard; malformed entries are skipped. */
  learn(table: Buffer): number;
  close(): Promise<void>;
}

/**
 * How the cluster port is bound (a node of one process): alone; 'offer': with SO_REUSEPORT, for a
 * takeover successor, after a probe that fails on a taken port (as the public port's,
 * takeover-serve.ts); 'join': beside the running node's socket, as its successor.
 */
export type ClusterPortSharing = 'offer' | 'join' | undefined;

/** Plain numbers on the paths, read by the metrics at scrape time. */
class NodeCounts {
  forwarded = 0;
  backwarded = 0;
  readonly accepted = { forward: 0, backward: 0 };
  readonly dropped = { unknown_node: 0, backward_unknown_node: 0 };
  misrouted = 0;
}

/**
 * Binds the cluster port (a worker: takes the one its primary bound), starts the link and routes
 * the DTLS server's CIDs; before listen(). Zeroes `settings.key` once its keys are derived.
 */
export async function startNodeRouting(server: CoapPskServer, settings: NodeSettings, host: string, log: Logger, worker?: NodeWorker, sharing?: ClusterPortSharing): Promise<NodeRouting> {
  const socket = worker ? quiet(worker.socket) : await bindClusterSocket(host, settings.port, sharing);
  const secret = deriveClusterKey(settings.key, 'cid-route');
  const link = new ForwardLink({
    nodeId: settings.nodeId, clusterKey: settings.key, socket, peers: settings.peers,
    discover: settings.dns === undefined ? undefined : dnsPeers(settings.dns, settings.port),
  });
  settings.key.fill(0);
  const slot = worker?.slot ?? 0;
  const cidLength = server.dtls.config.cidLength;
  const counts = new NodeCounts();
  /** Another worker of this node that the route may name. */
  const sibling = (w: number) => worker !== undefined && w >= 1 && w <= worker.count && w !== slot;
  const routed = server.dtls.routeCids({
    route: nodeRoute(settings.nodeId, slot),
    routeBytes: NODE_ROUTE_BYTES,
    secret,
    foreign(route, datagram, address, port) {
      const node = route >>> WORKER_BITS;
      if (node === settings.nodeId) {
        // Another worker of this node; a worker id this node does not run is dropped as unknown.
        if (!sibling(route & WORKER_MASK)) return false;
        worker!.pass(route & WORKER_MASK, datagram, address, port);
        return true;
      }
      if (link.forward(node, datagram, { address, port })) counts.forwarded++;
      else counts.dropped.unknown_node++;
      return true;
    },
    via: settings.backward
      ? (node, datagram, address, port) => {
        if (link.backward(node, datagram, { address, port })) counts.backwarded++;
        else counts.dropped.backward_unknown_node++;
      }
      : undefined,
  });
  if (!routed) {
    // A bug: nodeSettings() refuses such a dtls.cidLength at start, with the line naming it.
    socket.close();
    throw new Error(`startNodeRouting: CID length ${cidLength} leaves no room for the route`);
  }
  link.on('forward', (m: ForwardMessage) => {
    const cid = peekCid(m.payload, cidLength);
    const route = cid && server.dtls.routeOf(cid);
    const w = route === undefined ? -1 : route & WORKER_MASK;
    if (route === undefined || route >>> WORKER_BITS !== settings.nodeId || (w !== slot && !sibling(w))) {
      counts.misrouted++; // peer tables that disagree; served elsewhere, never passed on from here
      return;
    }
    counts.accepted.forward++;
    const via = settings.backward ? m.senderNode : undefined;
    if (w === slot) server.dtls.onDatagram(m.payload, m.device!.address, m.device!.port, true, via);
    else worker!.pass(w, m.payload, m.device!.address, m.device!.port, via); // served there as forwarded: no further hop
  });
  link.on('backward', (m: ForwardMessage) => {
    counts.accepted.backward++;
    server.dtls.sendDatagram(m.payload, m.device!.address, m.device!.port);
  });
  link.on('peer-up', (node: number) => log.info({ node }, 'cluster peer up'));
  link.on('peer-down', (node: number) => log.info({ node }, 'cluster peer gone: records for its sessions are dropped'));
  link.on('duplicate-node-id', (address: string) => log.error({ nodeId: settings.nodeId, address }, 'another node announces this node id'));
  if (worker) shareHellos(link, worker);
  registerNodeMetrics(server.metrics.registry, link, counts);
  link.start();
  log.info({ nodeId: settings.nodeId, clusterPort: socket.address().port, peers: settings.peers.length, dns: settings.dns, backward: settings.backward }, 'cluster forwarding on');
  return {
    link,
    peerTable: () => Buffer.from(JSON.stringify(link.upPeers())),
    learn: (table) => learnPeers(link, table),
    close: async () => {
      link.close();
      await new Promise<void>((done) => socket.close(() => done()));
    },
  };
}

/**
 * A peer's messages reach one worker of this node only (its address and port hash to one socket):
 * every worker's table learns of the peer from the HELLOs that one takes.
 */
function shareHellos(link: ForwardLink, worker: NodeWorker): void {
  for (const h of worker.peers) link.heard(h.node, h, Date.now() - h.ageMs);
  link.on('hello', (node: number, from: DeviceAddress) => worker.heard(node, from));
  worker.onHeard((h) => link.heard(h.node, h, Date.now() - h.ageMs));
}

/** A predecessor's peer table (JSON of ForwardLink.upPeers()) into `link`; the entries entered. */
function learnPeers(link: ForwardLink, table: Buffer): number {
  let entries: unknown;
  try {
    entries = JSON.parse(table.toString('utf8'));
  } catch {
    return 0;
  }
  if (!Array.isArray(entries)) return 0;
  let n = 0;
  for (const e of entries) {
    if (!isPeerEntry(e)) continue;
    link.heard(e.node, e, Date.now() - e.ageMs);
    n++;
  }
  return n;
}

async function bindClusterSocket(host: string, port: number, sharing: ClusterPortSharing): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ...(sharing ? { reusePort: true } : {}) });
  try {
    if (sharing === 'offer') await assertPortFree(host, port);
    await new Promise<void>((bound, fail) => {
      socket.once('error', fail);
      socket.bind(port, host, () => {
        socket.off('error', fail);
        bound();
      });
    });
  } catch (e) {
    socket.close();
    throw new UserError(`config cluster.port: cannot listen on ${host}:${port} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return quiet(socket);
}

function quiet(socket: dgram.Socket): dgram.Socket {
  socket.on('error', () => {}); // ICMP errors of a peer that is gone: its HELLOs stop, the table forgets it
  return socket;
}

/** The nodes behind a DNS name (a headless Service), this host's own addresses left out. */
function dnsPeers(name: string, port: number): () => Promise<{ address: string; port: number }[]> {
  return async () => {
    const own = new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
    return (await lookup(name, { all: true })).filter((a) => !own.has(a.address)).map((a) => ({ address: a.address, port }));
  };
}

function registerNodeMetrics(registry: Registry, link: ForwardLink, counts: NodeCounts): void {
  const registers = [registry];
  const total = (name: string, help: string, read: () => number) =>
    new Counter({
      name: `coap_psk_cluster_${name}`, help, registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const byLabel = (name: string, help: string, label: string, read: () => Iterable<[string, number]>) =>
    new Counter({
      name: `coap_psk_cluster_${name}`, help, labelNames: [label], registers,
      collect() {
        this.reset();
        for (const [value, n] of read()) this.inc({ [label]: value }, n);
      },
    });
  total('forwarded_total', "Datagrams with another node's Connection ID forwarded to that node", () => counts.forwarded);
  total('backwarded_total', "This node's replies sent back through the node that received the device's record", () => counts.backwarded);
  byLabel('accepted_total', 'Messages taken on the cluster port, by type (forward: served here; backward: sent on to the device)', 'type', () => Object.entries(counts.accepted));
  byLabel('refused_total', 'Messages refused on the cluster port, by reason (never processed)', 'reason', () => [...link.refused, ['misrouted', counts.misrouted]]);
  byLabel('dropped_total', 'Datagrams dropped for want of a node: the CID names no known node, or the receiving node is gone', 'reason', () => Object.entries(counts.dropped));
}
