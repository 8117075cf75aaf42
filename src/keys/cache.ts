/**
 * A bounded LRU with TTL in front of any resolver. Its main job is single-flight: a device
 * that retries its handshake, or a fleet that reconnects at once, costs one HSM call per
 * identity, not one per ClientKeyExchange. Key bytes are zeroed whenever an entry leaves.
 */
import { LRUCache } from 'lru-cache';
import type { KeyResolver, PskCandidate } from './types.js';

export interface CacheOptions {
  /** false: every resolve goes to the inner resolver (no cache, no single-flight). Default true. */
  enabled?: boolean;
  /** Default 10,000 identities. */
  maxEntries?: number;
  /** How long a derived key is kept. Default 10 minutes. */
  ttlMs?: number;
  /** How long "unknown identity" is remembered; 0 disables. Default 10 s. */
  negativeTtlMs?: number;
  /** Injectable clock for tests. */
  now?: () => number;
}

const copy = (cs: readonly PskCandidate[]): PskCandidate[] => cs.map((c) => ({ psk: Buffer.from(c.psk), keyLabel: c.keyLabel }));
/**
 * The cache's own long-lived copies get memory of their own: a Buffer.from() copy this small is
 * a slice of node's shared 8 KB pool, and a cached key would keep a whole slab of dead data.
 */
const keep = (cs: readonly PskCandidate[]): PskCandidate[] =>
  cs.map((c) => {
    const psk = Buffer.allocUnsafeSlow(c.psk.length);
    c.psk.copy(psk);
    return { psk, keyLabel: c.keyLabel };
  });
const wipe = (cs: readonly PskCandidate[]): void => cs.forEach((c) => c.psk.fill(0));

export class CachingResolver implements KeyResolver {
  /**
   * lru-cache: O(1) recency and eviction. (A Map used as an LRU, taking its first entry to
   * evict, walks past every deleted hole V8 keeps until it rehashes: 11 µs per miss at 10,000
   * entries, measured.) Evicted, expired, replaced and cleared entries are zeroed in dispose.
   */
  private readonly entries: LRUCache<string, PskCandidate[]>;
  private readonly inflight = new Map<string, Promise<PskCandidate[]>>();
  private readonly enabled: boolean;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  /** What fetches returned to their waiters, zeroed together once those have copied it. */
  private handedOut: PskCandidate[][] = [];
  private closed = false;

  constructor(private readonly inner: KeyResolver, options: CacheOptions = {}) {
    this.enabled = options.enabled ?? true;
    this.ttlMs = options.ttlMs ?? 600_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 10_000;
    this.entries = new LRUCache<string, PskCandidate[]>({
      max: Math.max(1, options.maxEntries ?? 10_000),
      ttl: Math.max(1, this.ttlMs),
      // Read the clock on every check (the default caches it for 1 ms behind a timer).
      ttlResolution: 0,
      perf: { now: options.now ?? Date.now },
      dispose: (candidates) => wipe(candidates),
    });
  }

  get size(): number {
    return this.entries.size;
  }

  /** Callers get their own copies: they may zero them, and eviction must not touch a key in use. */
  async resolve(identity: Buffer): Promise<PskCandidate[]> {
    if (this.closed) throw new Error('key resolver is closed');
    if (!this.enabled) return this.inner.resolve(identity);
    const id = identity.toString('latin1');
    const hit = this.entries.get(id);
    if (hit) return copy(hit);
    let pending = this.inflight.get(id);
    if (!pending) {
      pending = this.fetch(id, identity);
      this.inflight.set(id, pending);
    }
    return copy(await pending);
  }

  private async fetch(id: string, identity: Buffer): Promise<PskCandidate[]> {
    try {
      const fresh = await this.inner.resolve(Buffer.from(identity));
      this.store(id, fresh);
      this.wipeSoon(fresh);
      return fresh;
    } finally {
      this.inflight.delete(id);
    }
  }

  /** Waiters copy in the microtasks that follow a fetch; one immediate zeroes all of a turn's. */
  private wipeSoon(candidates: PskCandidate[]): void {
    if (this.handedOut.push(candidates) > 1) return;
    setImmediate(() => {
      for (const cs of this.handedOut) wipe(cs);
      this.handedOut = [];
    });
  }

  private store(id: string, candidates: PskCandidate[]): void {
    const ttl = candidates.length > 0 ? this.ttlMs : this.negativeTtlMs;
    if (this.closed || ttl <= 0) return;
    this.entries.set(id, keep(candidates), { ttl });
  }

  /** Drops every entry (for example after a master key was withdrawn). */
  clear(): void {
    this.entries.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clear();
    await this.inner.close();
  }
}
