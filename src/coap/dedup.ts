/**
 * Duplicate detection (RFC 7252 4.5): every request's Message ID is remembered per session for
 * EXCHANGE_LIFETIME (CON) or NON_LIFETIME (NON), with the reply it got, so that a retransmitted
 * CON gets the same reply and its handler never runs twice.
 *
 * The bound is in bytes over all sessions (replies plus a fixed overhead per entry), not a count:
 * the oldest entries go first. The order is a queue beside the per-session Maps, so evicting
 * never walks a Map (see CONTRIBUTING's pitfalls).
 */
import type { SessionState } from './session-state.js';

/** RFC 7252 4.8.2 with the default transmission parameters. */
export const EXCHANGE_LIFETIME_MS = 247_000;
export const NON_LIFETIME_MS = 145_000;
/** What an entry costs besides its reply: the object, its Map slot, its queue slot. */
export const ENTRY_OVERHEAD_BYTES = 160;

export class DedupEntry {
  /** The reply sent (piggybacked response, empty ACK of a separate one); undefined while none is. */
  reply: Buffer | undefined = undefined;
  bytes = ENTRY_OVERHEAD_BYTES;
  /** Set when the entry no longer counts (its session ended): skipped when it leaves the queue. */
  dead = false;

  constructor(readonly state: SessionState, readonly messageId: number, readonly expires: number) {}
}

export class DedupCache {
  private queue: DedupEntry[] = [];
  private head = 0;
  private used = 0;

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
    entry.reply = reply;
    if (this.used > this.maxBytes) this.evict(0);
  }

  /** A session ended: its entries stop counting now; their queue slots go as they come up. */
  dropSession(state: SessionState): void {
    for (const e of state.dedup.values()) {
      if (e.dead) continue;
      e.dead = true;
      e.reply = undefined;
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
