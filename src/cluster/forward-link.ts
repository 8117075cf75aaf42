/**
 * One node's end of the cluster's internal UDP port (docs/cluster.md): it sends and receives the
 * messages of forward-wire.ts, keeps the peer table (node id → address) from the static list and
 * from the HELLOs peers send, and refuses everything that does not authenticate under the
 * cluster key. src/cluster/node-routing.ts puts it between the server and the other nodes.
 *
 * A peer is up while its HELLOs arrive (every helloIntervalMs, gone after peerTimeoutMs without
 * one), a static one too: it keeps its configured address, but a node that stopped is not sent
 * records that would be lost. A HELLO from a peer that was not up is answered with one, so that
 * two nodes that start one after the other know each other at once, not a period later.
 *
 * It never forwards what it receives: a FORWARD or BACKWARD that arrives is handed to the
 * listener ('forward' / 'backward' events) and goes nowhere else, so no message makes a second
 * hop whatever the peer tables say.
 *
 * A node of several workers runs one link per worker, every one on the same cluster port
 * (SO_REUSEPORT). A peer's messages all come from one address and port to one, so the kernel
 * hands every one of them to the same worker: that worker tells the others of each HELLO it
 * takes ('hello' event), and they enter it with heard(), so every worker's table knows the
 * peers. Several workers of one peer send HELLOs from that peer's one address and port, with
 * its one node id: they are the same table entry.
 */
import type dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { ClusterPeer } from './cluster-settings.js';
import {
  decodeForwardMessage, deriveClusterKey, encodeForwardMessage, ForwardType, MAX_NODE_ID, type DeviceAddress, type ForwardMessage,
} from './forward-wire.js';

export interface ForwardLinkOptions {
  nodeId: number;
  /** The bytes of --cluster-key-file; the link derives its MAC key from them. */
  clusterKey: Buffer;
  /** The cluster port's socket, bound by the caller. */
  socket: dgram.Socket;
  /** --cluster-peers, with IP addresses (host names resolved by the caller). Never leave the table. */
  peers?: readonly ClusterPeer[];
  /** --cluster-dns: where to send HELLOs; called every helloIntervalMs. */
  discover?: () => Promise<readonly { address: string; port: number }[]>;
  helloIntervalMs?: number;
  /** A peer learnt from HELLOs leaves the table after this long without one. */
  peerTimeoutMs?: number;
  freshnessMs?: number;
  now?: () => number;
}

export type RefusalReason = 'unauthentic' | 'own_node_id';

interface Peer {
  address: string;
  port: number;
  /** The last HELLO's arrival; undefined: none yet (or since it went down). */
  lastHelloMs?: number;
  /** From the static list: its address is the configured one, and it stays in the table. */
  fixed: boolean;
}

/** A peer node heard from `ageMs` ago: a takeover successor's table entry, a HELLO passed between workers. */
export interface PeerEntry {
  node: number;
  address: string;
  port: number;
  ageMs: number;
}

/** An entry that came from another process (a predecessor's table, a worker's message), checked before heard(). */
export function isPeerEntry(e: unknown): e is PeerEntry {
  if (typeof e !== 'object' || e === null) return false;
  const { node, address, port, ageMs } = e as Partial<Record<keyof PeerEntry, unknown>>;
  return Number.isInteger(node) && (node as number) >= 0 && (node as number) <= MAX_NODE_ID && typeof address === 'string'
    && Number.isInteger(port) && typeof ageMs === 'number' && ageMs >= 0;
}

export class ForwardLink extends EventEmitter {
  /** Datagrams refused on the cluster port, by reason (never processed, never answered). */
  readonly refused = new Map<RefusalReason, number>();
  private readonly key: Buffer;
  private readonly table = new Map<number, Peer>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private readonly peerTimeoutMs: number;
  private readonly onMessage = (msg: Buffer, from: dgram.RemoteInfo) => this.receive(msg, from);

  constructor(private readonly options: ForwardLinkOptions) {
    super();
    this.key = deriveClusterKey(options.clusterKey, 'forward');
    this.now = options.now ?? Date.now;
    this.peerTimeoutMs = options.peerTimeoutMs ?? 15_000;
    for (const p of options.peers ?? []) if (p.nodeId !== options.nodeId) this.table.set(p.nodeId, { address: p.host, port: p.port, fixed: true });
  }

  start(): void {
    this.options.socket.on('message', this.onMessage);
    const tick = () => void this.hello();
    tick();
    this.timer = setInterval(tick, this.options.helloIntervalMs ?? 5000);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.options.socket.off('message', this.onMessage);
  }

  /** The address of a node's cluster port, if the node is known and up. */
  peer(nodeId: number): { address: string; port: number } | undefined {
    const p = this.table.get(nodeId);
    if (!p || p.lastHelloMs === undefined) return undefined;
    if (!this.isUp(p)) {
      p.lastHelloMs = undefined;
      if (!p.fixed) this.table.delete(nodeId);
      this.emit('peer-down', nodeId);
      return undefined;
    }
    return { address: p.address, port: p.port };
  }

  /** The peers that are up, with how long ago their last HELLO came: what a successor enters with heard(). */
  upPeers(): PeerEntry[] {
    return [...this.table].filter(([, p]) => this.isUp(p)).map(([node, p]) => ({ node, address: p.address, port: p.port, ageMs: this.now() - p.lastHelloMs! }));
  }

  private isUp(p: Peer): boolean {
    return p.lastHelloMs !== undefined && this.now() - p.lastHelloMs <= this.peerTimeoutMs;
  }

  /** A device's datagram to the node that owns its session; false when that node is unknown. */
  forward(nodeId: number, datagram: Buffer, device: DeviceAddress): boolean {
    return this.send(nodeId, ForwardType.FORWARD, datagram, device);
  }

  /** The owner's datagram for a device, to the node that received the device's record. */
  backward(nodeId: number, datagram: Buffer, device: DeviceAddress): boolean {
    return this.send(nodeId, ForwardType.BACKWARD, datagram, device);
  }

  private send(nodeId: number, type: ForwardType, payload: Buffer, device?: DeviceAddress): boolean {
    const to = nodeId === this.options.nodeId ? undefined : this.peer(nodeId);
    if (!to) return false;
    this.sendTo(to, { type, senderNode: this.options.nodeId, timestampMs: this.now(), device, payload });
    return true;
  }

  private sendTo(to: { address: string; port: number }, msg: ForwardMessage): void {
    this.options.socket.send(encodeForwardMessage(this.key, msg), to.port, to.address);
  }

  private async hello(): Promise<void> {
    const targets: { address: string; port: number }[] = [...this.table.values()];
    if (this.options.discover) targets.push(...(await this.options.discover().catch(() => [])));
    const msg = this.helloMessage();
    for (const t of targets) this.sendTo(t, msg);
  }

  private helloMessage(): ForwardMessage {
    return { type: ForwardType.HELLO, senderNode: this.options.nodeId, timestampMs: this.now(), payload: Buffer.alloc(0) };
  }

  private refuse(reason: RefusalReason): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  /**
   * A HELLO another worker of this node took from `nodeId` at `atMs` (its clock, default now):
   * entered as if this link had taken it, but not answered (that worker answered).
   */
  heard(nodeId: number, from: { address: string; port: number }, atMs = this.now()): void {
    if (nodeId === this.options.nodeId || this.now() - atMs > this.peerTimeoutMs) return; // stale: that peer may be gone
    this.met(nodeId, from, atMs);
  }

  /** A HELLO from `nodeId` at `atMs`: the peer's entry, and whether it was up before. */
  private met(nodeId: number, from: { address: string; port: number }, atMs: number): { peer: Peer; wasUp: boolean } {
    const known = this.table.get(nodeId);
    const wasUp = known !== undefined && this.isUp(known);
    // A static peer stays as configured; one learnt from HELLOs is where they come from.
    const peer = known?.fixed ? known : { address: from.address, port: from.port, fixed: false };
    peer.lastHelloMs = Math.max(peer.lastHelloMs ?? 0, atMs);
    this.table.set(nodeId, peer);
    if (!wasUp) this.emit('peer-up', nodeId);
    return { peer, wasUp };
  }

  private receive(datagram: Buffer, from: dgram.RemoteInfo): void {
    const msg = decodeForwardMessage(this.key, datagram, { nowMs: this.now(), freshnessMs: this.options.freshnessMs });
    if (!msg) return this.refuse('unauthentic');
    if (msg.senderNode === this.options.nodeId) {
      this.refuse('own_node_id');
      this.emit('duplicate-node-id', from.address);
      return;
    }
    if (msg.type === ForwardType.HELLO) {
      const { peer, wasUp } = this.met(msg.senderNode, from, this.now());
      if (!wasUp) this.sendTo(peer, this.helloMessage());
      this.emit('hello', msg.senderNode, { address: from.address, port: from.port });
      return;
    }
    this.emit(msg.type === ForwardType.FORWARD ? 'forward' : 'backward', msg);
  }
}
