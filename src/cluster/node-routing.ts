/**
 * Connection IDs across the nodes of a cluster (docs/cluster.md), for a node of one process
 * (--workers 1): the node-level sibling of cid-routing.ts. The CIDs this node issues carry its
 * route, masked with a key every node derives from the cluster key, so any node reads any CID's
 * owner with one HMAC and no table:
 *
 *   route (16 bits) = node id (10 bits) ‖ worker id (6 bits, 0: the node's one process)
 *
 * A tls12_cid record whose CID names another node and no session here goes, whole, in a FORWARD
 * to that node's cluster port (forward-link.ts), with the device's address; one naming a node
 * not in the peer table is dropped, and the device handshakes again once it gives up. The owner
 * serves a FORWARD as a datagram from the device, marked as having come through the sender, so
 * the session's replies go back to it in a BACKWARD (the default: a load balancer that NATs
 * un-NATs only the flow it made, the receiving node's) and it sends them from its own public
 * socket; with backward off, the owner answers from its own socket (direct server return).
 *
 * No loop: a datagram from the public port is forwarded at most once and never to this node;
 * a FORWARD is served here or dropped, never forwarded again (onDatagram's `forwarded`), and one
 * whose CID does not name this node is refused; a BACKWARD only ever goes to its device.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { Counter, type Registry } from 'prom-client';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CoapPskServer } from '../server.js';
import { CidFactory } from '../dtls/cid-factory.js';
import { peekCid } from '../dtls/cid-record.js';
import { ForwardLink } from './forward-link.js';
import { deriveClusterKey, type ForwardMessage } from './forward-wire.js';
import type { NodeSettings } from './node-settings.js';

export const NODE_ROUTE_BYTES = 2;
const WORKER_BITS = 6;
const WORKER_MASK = (1 << WORKER_BITS) - 1;

/** The route of a node's CIDs (worker 0: the node runs one process). */
export function nodeRoute(nodeId: number, worker = 0): number {
  return (nodeId << WORKER_BITS) | worker;
}

export interface NodeRouting {
  readonly link: ForwardLink;
  close(): Promise<void>;
}

/** Plain numbers on the paths, read by the metrics at scrape time. */
class NodeCounts {
  forwarded = 0;
  backwarded = 0;
  readonly accepted = { forward: 0, backward: 0 };
  readonly dropped = { unknown_node: 0, backward_unknown_node: 0 };
  misrouted = 0;
}

/**
 * Binds the cluster port, starts the link and routes the DTLS server's CIDs; before listen().
 * Zeroes `settings.key` once its keys are derived.
 */
export async function startNodeRouting(server: CoapPskServer, settings: NodeSettings, host: string, log: Logger): Promise<NodeRouting> {
  const socket = await bindClusterSocket(host, settings.port);
  const secret = deriveClusterKey(settings.key, 'cid-route');
  const link = new ForwardLink({
    nodeId: settings.nodeId, clusterKey: settings.key, socket, peers: settings.peers,
    discover: settings.dns === undefined ? undefined : dnsPeers(settings.dns, settings.port),
  });
  settings.key.fill(0);
  const own = nodeRoute(settings.nodeId);
  const cidLength = server.dtls.config.cidLength;
  const counts = new NodeCounts();
  const routed = server.dtls.routeCids({
    route: own,
    routeBytes: NODE_ROUTE_BYTES,
    secret,
    foreign(route, datagram, address, port) {
      if ((route & WORKER_MASK) === 0 && link.forward(route >>> WORKER_BITS, datagram, { address, port })) counts.forwarded++;
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
    socket.close();
    throw new UserError(`config dtls.cidLength: node forwarding needs a Connection ID with room for the route (${NODE_ROUTE_BYTES} bytes)`);
  }
  const cids = new CidFactory({ length: cidLength, routeBytes: NODE_ROUTE_BYTES, secret });
  link.on('forward', (m: ForwardMessage) => {
    const cid = peekCid(m.payload, cidLength);
    if (cid === undefined || cids.routeOf(cid) !== own) {
      counts.misrouted++; // peer tables that disagree; served elsewhere, never passed on from here
      return;
    }
    counts.accepted.forward++;
    server.dtls.onDatagram(m.payload, m.device!.address, m.device!.port, true, settings.backward ? m.senderNode : undefined);
  });
  link.on('backward', (m: ForwardMessage) => {
    counts.accepted.backward++;
    server.dtls.sendDatagram(m.payload, m.device!.address, m.device!.port);
  });
  link.on('peer-up', (node: number) => log.info({ node }, 'cluster peer up'));
  link.on('peer-down', (node: number) => log.info({ node }, 'cluster peer gone: records for its sessions are dropped'));
  link.on('duplicate-node-id', (address: string) => log.error({ nodeId: settings.nodeId, address }, 'another node announces this node id'));
  registerNodeMetrics(server.metrics.registry, link, counts);
  link.start();
  log.info({ nodeId: settings.nodeId, clusterPort: socket.address().port, peers: settings.peers.length, dns: settings.dns, backward: settings.backward }, 'cluster forwarding on');
  return {
    link,
    close: async () => {
      link.close();
      await new Promise<void>((done) => socket.close(() => done()));
    },
  };
}

async function bindClusterSocket(host: string, port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
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
