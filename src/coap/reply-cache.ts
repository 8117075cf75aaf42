/**
 * The replies node-coap keeps for duplicate detection (RFC 7252 section 4.5: a repeated CON is
 * answered with the same reply, not handled again), bounded by count and held as bytes only.
 *
 * node-coap's own cache is an LRU over the reply Buffer, and the Buffer carries the reply's
 * retransmission object, which holds the response stream, which holds the request: about 5 KB
 * per request kept for EXCHANGE_LIFETIME (247 s). At thousands of requests a second that is
 * hundreds of MB, and every garbage collection walks it. Its size budget counts bytes of tiny
 * buffers, so it bounds almost nothing.
 *
 * Here a piggybacked ACK or a NON reply (never retransmitted by us) is kept as a copy of its
 * bytes; only replies that still need their objects keep them: a CON reply (its retransmission
 * stops when the ACK arrives and the entry is deleted) and an Observe notification (a Reset
 * ends the observation). Entries expire after the exchange lifetime, in insertion order, and
 * the oldest go first once `maxEntries` is reached: at 10,000 requests/s, 100,000 entries still
 * remember 10 s of replies: a client's first two retransmissions of a CON (RFC 7252 4.8: after
 * 2-3 s, then 4-6 s more), not the last ones of MAX_TRANSMIT_SPAN (45 s).
 */

/** What node-coap stores: the encoded reply, with objects hung on it for some kinds. */
export interface CachedReply extends Buffer {
  sender?: { reset(): void };
  response?: unknown;
}

interface Entry {
  readonly key: string;
  readonly value: CachedReply;
  readonly expires: number;
}

/** CoAP message type, the two bits after the version (RFC 7252 section 3). */
const TYPE_CON = 0;
/** Bytes per chunk of kept reply copies. */
const ARENA_CHUNK = 64 * 1024;

export interface ReplyCacheOptions {
  /** Replies kept at most. Default 100,000. */
  maxEntries?: number;
  /** How long a reply is kept, ms. Default: node-coap's EXCHANGE_LIFETIME. */
  ttlMs: number;
}

/**
 * The subset of lru-cache's interface node-coap's Server calls on `_lru`.
 *
 * Entries are kept in insertion order in a queue beside the Map, not found by iterating the
 * Map from its start: V8 leaves deleted Map entries as holes until it rehashes, so taking "the
 * first entry" of a Map used as a FIFO walks past every hole, thousands per call (measured
 * here: 11 µs per eviction at 10,000 entries, against 0.2 µs with the queue).
 */
export class ReplyCache {
  /** Set and cleared by node-coap's Server.listen()/close(). */
  pruneTimer: NodeJS.Timeout | undefined;
  private readonly entries = new Map<string, Entry>();
  /** Every entry ever set, oldest first from `head`; stale ones (replaced, deleted) are skipped. */
  private queue: Array<Entry | undefined> = [];
  private head = 0;
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private arena = Buffer.alloc(0);
  private arenaUsed = 0;

  constructor(options: ReplyCacheOptions) {
    this.maxEntries = options.maxEntries ?? 100_000;
    this.ttlMs = options.ttlMs;
  }

  get size(): number {
    return this.entries.size;
  }

  peek(key: string): CachedReply | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires > Date.now()) return e.value;
    this.remove(e);
    return undefined;
  }

  set(key: string, reply: CachedReply): this {
    const old = this.entries.get(key);
    if (old !== undefined) this.remove(old);
    const entry: Entry = { key, value: this.keepable(reply), expires: Date.now() + this.ttlMs };
    this.entries.set(key, entry);
    this.queue.push(entry);
    while (this.entries.size > this.maxEntries) this.removeOldest();
    // Entries deleted from the middle (an ACKed CON reply) leave slots the head has not reached.
    if (this.queue.length - this.head > 2 * this.maxEntries + 4096) this.rebuildQueue();
    return this;
  }

  delete(key: string): boolean {
    const e = this.entries.get(key);
    if (e === undefined) return false;
    this.remove(e);
    return true;
  }

  clear(): void {
    for (const e of this.entries.values()) e.value.sender?.reset();
    this.entries.clear();
    this.queue = [];
    this.head = 0;
  }

  /** Drops expired entries; the queue is in expiry order, so this stops at the first live one. */
  purgeStale(): void {
    const now = Date.now();
    for (let e = this.oldest(); e !== undefined && e.expires <= now; e = this.oldest()) this.remove(e);
  }

  /** The oldest live entry; stale queue slots in front of it are dropped on the way. */
  private oldest(): Entry | undefined {
    while (this.head < this.queue.length) {
      const e = this.queue[this.head];
      if (e !== undefined && this.entries.get(e.key) === e) return e;
      this.queue[this.head++] = undefined;
    }
    return undefined;
  }

  private removeOldest(): void {
    const e = this.oldest();
    if (e !== undefined) this.remove(e);
  }

  private remove(e: Entry): void {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    // A CON reply still being retransmitted stops with its entry, as node-coap's dispose does.
    e.value.sender?.reset();
    this.compact();
  }

  /**
   * The reply itself when something needs its objects, else a copy of its bytes. node-coap
   * hangs `sender` on the reply after storing it, so a CON reply is recognised by its header.
   */
  private keepable(reply: CachedReply): CachedReply {
    if (reply.response !== undefined || reply.length === 0) return reply;
    if (((reply[0]! >> 4) & 0x03) === TYPE_CON) return reply;
    return this.copyToArena(reply);
  }

  /**
   * Copies live in chunks of their own, filled in insertion order. A small Buffer.from() copy
   * would be a slice of node's shared 8 KB pool, and one kept reply would hold a whole pool slab
   * of other, dead data: measured, 52 MB of slabs for 100,000 replies. Here a chunk holds only
   * replies, and entries leave in insertion order, so old chunks are freed whole.
   */
  private copyToArena(reply: Buffer): CachedReply {
    if (reply.length > ARENA_CHUNK / 8) return Buffer.from(reply) as CachedReply;
    if (this.arenaUsed + reply.length > this.arena.length) {
      this.arena = Buffer.allocUnsafeSlow(ARENA_CHUNK);
      this.arenaUsed = 0;
    }
    const copy = this.arena.subarray(this.arenaUsed, this.arenaUsed + reply.length);
    reply.copy(copy);
    this.arenaUsed += reply.length;
    return copy as CachedReply;
  }

  /** The live entries in insertion order: the Map's own order. */
  private rebuildQueue(): void {
    this.queue = [...this.entries.values()];
    this.head = 0;
  }

  /** Gives back the queue's dead front once it is large and at least half the queue. */
  private compact(): void {
    if (this.head < 4096 || this.head * 2 < this.queue.length) return;
    this.queue = this.queue.slice(this.head);
    this.head = 0;
  }
}

interface ServerWithCache {
  _lru?: { pruneTimer?: NodeJS.Timeout; clear(): void };
}

/** Puts a ReplyCache in place of node-coap 1.5's `_lru`; before listen(), which starts its prune timer. */
export function installReplyCache(server: unknown, options: ReplyCacheOptions): ReplyCache | undefined {
  const s = server as ServerWithCache;
  if (s._lru === undefined || typeof s._lru.clear !== 'function') return undefined; // node-coap changed: keep its own
  const cache = new ReplyCache(options);
  s._lru.clear();
  (s as { _lru: unknown })._lru = cache;
  return cache;
}
