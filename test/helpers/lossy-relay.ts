// A UDP relay on 127.0.0.1 that loses and reorders datagrams on purpose, reproducibly.
//
// Clients send to relay.port; each client address gets its own upstream socket towards the
// target, so the target sees one distinct peer per client, as it would without the relay.
// Every flow direction (client→target, target→client) has its own PRNG seeded from `seed`
// and the flow's number (order of first appearance), so the decisions for one flow do not
// depend on how its datagrams interleave with other flows or with the opposite direction.
//
// Reordering: a datagram picked for reordering is held back and sent right after the next
// datagram of the same direction; if none comes within holdMs, it is sent alone (late).
// Bounded: after maxDatagrams datagrams in total, everything further is dropped; at most
// maxClients flows are created.

import dgram from 'node:dgram';
import { LOOPBACK } from './ports.js';

export interface LossyRelayOptions {
  target: { host: string; port: number };
  /** Probability in [0,1] that a datagram is dropped. */
  dropRate: number;
  /** Probability in [0,1] that a (not dropped) datagram is held back and reordered. */
  reorderRate: number;
  seed: number;
  /** Total datagrams handled (both directions) before the relay drops everything. */
  maxDatagrams: number;
  /** Datagrams to drop regardless of the PRNG, by 0-based index within their direction of
   * the first flow, e.g. { toTarget: [0] } drops the first ClientHello. */
  dropIndexes?: { toTarget?: number[]; toClient?: number[] };
  /** Longest time a held datagram waits for a successor. Default 200 ms. */
  holdMs?: number;
  /** Default 32. */
  maxClients?: number;
}

export interface DirectionStats {
  received: number;
  forwarded: number;
  dropped: number;
  reordered: number;
}

export interface RelayStats {
  toTarget: DirectionStats;
  toClient: DirectionStats;
  clients: number;
  /** Datagrams refused because maxDatagrams or maxClients was reached. */
  overLimit: number;
}

export interface LossyRelay {
  port: number;
  stats: RelayStats;
  close(): Promise<void>;
}

/** mulberry32: small, fast, good enough for test decisions; same seed, same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const newStats = (): DirectionStats => ({ received: 0, forwarded: 0, dropped: 0, reordered: 0 });

/** One direction of one flow: decides, holds and sends. */
class Lane {
  private held: Buffer | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private index = 0;

  constructor(
    private readonly rand: () => number,
    private readonly opts: LossyRelayOptions,
    private readonly stats: DirectionStats,
    private readonly dropSet: Set<number>,
    private readonly send: (msg: Buffer) => void,
  ) {}

  push(msg: Buffer): void {
    this.stats.received++;
    const i = this.index++;
    // Always draw both numbers so one decision never shifts the sequence of the other.
    const dropDraw = this.rand();
    const reorderDraw = this.rand();
    if (this.dropSet.has(i) || dropDraw < this.opts.dropRate) {
      this.stats.dropped++;
      return;
    }
    if (this.held === undefined && reorderDraw < this.opts.reorderRate) {
      this.stats.reordered++;
      this.held = msg;
      this.holdTimer = setTimeout(() => this.flush(), this.opts.holdMs ?? 200);
      return;
    }
    this.forward(msg);
    this.flush();
  }

  flush(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const held = this.held;
    this.held = undefined;
    if (held) this.forward(held);
  }

  stop(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.held = undefined;
  }

  private forward(msg: Buffer): void {
    this.stats.forwarded++;
    this.send(msg);
  }
}

interface Flow {
  upstream: dgram.Socket;
  toTarget: Lane;
  toClient: Lane;
}

function bind(sock: dgram.Socket, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, LOOPBACK, () => {
      sock.off('error', reject);
      resolve();
    });
  });
}

export async function startLossyRelay(opts: LossyRelayOptions): Promise<LossyRelay> {
  for (const [name, v] of [['dropRate', opts.dropRate], ['reorderRate', opts.reorderRate]] as const) {
    if (!(v >= 0 && v <= 1)) throw new Error(`startLossyRelay: ${name} must be in [0,1], got ${v}`);
  }
  const stats: RelayStats = { toTarget: newStats(), toClient: newStats(), clients: 0, overLimit: 0 };
  const maxClients = opts.maxClients ?? 32;
  const flows = new Map<string, Flow>();
  const front = dgram.createSocket('udp4');
  let closed = false;
  let total = 0;

  const admit = (): boolean => {
    if (closed || total >= opts.maxDatagrams) {
      stats.overLimit++;
      return false;
    }
    total++;
    return true;
  };

  front.on('error', () => {}); // e.g. ICMP port unreachable reported on send; nothing to do
  front.on('message', (msg, rinfo) => {
    if (!admit()) return;
    const key = `${rinfo.address}:${rinfo.port}`;
    let flow = flows.get(key);
    if (!flow) {
      if (flows.size >= maxClients) {
        stats.overLimit++;
        return;
      }
      const n = flows.size;
      const upstream = dgram.createSocket('udp4');
      upstream.on('error', () => {});
      const first = n === 0;
      const toTarget = new Lane(
        mulberry32(opts.seed ^ (n * 2 + 1) * 0x9e3779b1),
        opts, stats.toTarget, new Set(first ? opts.dropIndexes?.toTarget : []),
        (m) => upstream.send(m, opts.target.port, opts.target.host),
      );
      const toClient = new Lane(
        mulberry32(opts.seed ^ (n * 2 + 2) * 0x9e3779b1),
        opts, stats.toClient, new Set(first ? opts.dropIndexes?.toClient : []),
        (m) => { if (!closed) front.send(m, rinfo.port, rinfo.address); },
      );
      upstream.on('message', (reply) => {
        if (admit()) toClient.push(reply);
      });
      // Bound before first use; send() on an unbound socket would bind to 0.0.0.0.
      upstream.bind(0, LOOPBACK);
      flow = { upstream, toTarget, toClient };
      flows.set(key, flow);
      stats.clients = flows.size;
    }
    flow.toTarget.push(msg);
  });

  await bind(front, 0);
  const port = front.address().port;

  const close = async () => {
    if (closed) return;
    closed = true;
    const closing: Promise<void>[] = [];
    for (const f of flows.values()) {
      f.toTarget.stop();
      f.toClient.stop();
      closing.push(new Promise((r) => f.upstream.close(() => r())));
    }
    closing.push(new Promise((r) => front.close(() => r())));
    await Promise.all(closing);
  };

  return { port, stats, close };
}
