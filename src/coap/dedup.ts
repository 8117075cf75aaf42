/**
 * Duplicate detection (RFC 7252 4.5): every request's Message ID is remembered per session for
 * EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON), with the reply it got, so that a retransmitted
 * CON gets the same reply and its handler never runs twice.
 *
 * The bound is in bytes over all sessions (replies plus a fixed overhead per entry), not a count:
 * the oldest entries go first. The order is a queue beside the per-session Maps, so evicting
 * never walks a Map (see CONTRIBUTING's pitfalls).
 *
 * Replies are copied into shared slabs instead of kept as Buffers of their own: a Buffer of its
 * own is an ArrayBuffer, its backing store and a view, ~200 bytes of heap besides its bytes
 * (measured, 200,000 entries with 14-byte replies: 350 bytes of heap per entry, 150 with the
 * slab, and 480 against ~315 bytes of RSS). Entries are added and
 * evicted in about the same order, so a slab is released soon after its last entry goes.
 */
import type { SessionState } from './session-state.js';

/** RFC 7252 4.8.2 with the default transmission parameters. */
export const EXCHANGE_LIFETIME_MS = 247_000;
export const NON_LIFETIME_MS = 145_000;
/**
 * What an entry costs besides its reply's bytes: the object, its Map slot, its queue slot
 * (measured with 200,000 entries over 1,000 sessions: ~150 bytes of heap each).
 */
export const ENTRY_OVERHEAD_BYTES = 160;
/** Replies are copied into slabs of this size; a larger reply than SLAB_BYTES / 8 keeps its own. */
const SLAB_BYTES = 64 * 1024;

export class DedupEntry {
  /** Where the reply sent (piggybacked response, empty ACK of a separate one) is kept; undefined while none is. */
  private slab: Buffer | undefined = undefined;
  private at = 0;
  private length = 0;
  bytes = ENTRY_OVERHEAD_BYTES;
  /** Set when the entry no longer counts (its session ended): skipped when it leaves the queue. */
  dead = false;

  constructor(readonly state: SessionState, readonly messageId: number, readonly expires: number) {}

  /** The reply sent, for a duplicate (a view made only then), or undefined while none is. */
  get reply(): Buffer | undefined {
    return this.slab?.subarray(this.at, this.at + this.length);
  }

  keep(slab: Buffer | undefined, at: number, length: number): void {
    this.slab = slab;
    this.at = at;
    this.length = length;
  }
}

export class DedupCache {
  private queue: DedupEntry[] = [];
  private head = 0;
  private used = 0;
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private slabAt = 0;

  constructor(private readonly maxBytes: number) {}

  get bytes(): number {
    return this.used;
  }

  get entries(): number {
    return this.queue.length - this.head;
  }

  /** The live entry for this Message ID, or undefined (expired entries count as absent). */
  find(state: SessionState, messageId: number, now: number): DedupEntry | undefined {
    const e = state.dedup.get(messageId);
    return e !== undefined && e.expires > now ? e : undefined;
  }

  add(state: SessionState, messageId: number, lifetimeMs: number, now: number): DedupEntry {
    const entry = new DedupEntry(state, messageId, now + lifetimeMs);
    state.dedup.set(messageId, entry);
    this.queue.push(entry);
    this.used += entry.bytes;
    this.evict(now);
    return entry;
  }

  /** Records the reply an entry answers its duplicates with. */
  setReply(entry: DedupEntry, reply: Buffer): void {
    if (entry.dead) return;
    const bytes = ENTRY_OVERHEAD_BYTES + reply.length;
    this.used += bytes - entry.bytes;
    entry.bytes = bytes;
    this.keep(entry, reply);
    if (this.used > this.maxBytes) this.evict(0);
  }

  private keep(entry: DedupEntry, reply: Buffer): void {
    if (reply.length > SLAB_BYTES / 8) return entry.keep(reply, 0, reply.length);
    if (this.slabAt + reply.length > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.slabAt = 0;
    }
    reply.copy(this.slab, this.slabAt);
    entry.keep(this.slab, this.slabAt, reply.length);
    this.slabAt += reply.length;
  }

  /** A session ended: its entries stop counting now; their queue slots go as they come up. */
  dropSession(state: SessionState): void {
    for (const e of state.dedup.values()) {
      if (e.dead) continue;
      e.dead = true;
      e.keep(undefined, 0, 0);
      this.used -= e.bytes;
    }
    state.dedup.clear();
  }

  /** Expired entries from the head, then the oldest ones while over the byte bound. */
  private evict(now: number): void {
    const q = this.queue;
    while (this.head < q.length) {
      const e = q[this.head]!;
      if (!e.dead && e.expires > now && this.used <= this.maxBytes) break;
      this.head++;
      if (e.dead) continue;
      e.dead = true;
      this.used -= e.bytes;
      if (e.state.dedup.get(e.messageId) === e) e.state.dedup.delete(e.messageId);
    }
    if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
  }
}
