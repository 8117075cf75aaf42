/**
 * A bounded LRU with TTL in front of any resolver. Its main job is single-flight: a device
 * that retries its handshake, or a fleet that reconnects at once, costs one HSM call per
 * identity, not one per ClientKeyExchange. Key bytes are zeroed whenever an entry leaves.
 */
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

interface Entry {
  candidates: PskCandidate[];
  expires: number;
}

const copy = (cs: readonly PskCandidate[]): PskCandidate[] => cs.map((c) => ({ psk: Buffer.from(c.psk), keyLabel: c.keyLabel }));
const wipe = (cs: readonly PskCandidate[]): void => cs.forEach((c) => c.psk.fill(0));

export class CachingResolver implements KeyResolver {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<PskCandidate[]>>();
  private readonly enabled: boolean;
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly inner: KeyResolver, options: CacheOptions = {}) {
    this.enabled = options.enabled ?? true;
    this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
    this.ttlMs = options.ttlMs ?? 600_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 10_000;
    this.now = options.now ?? Date.now;
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
    if (hit) {
      this.entries.delete(id);
      if (hit.expires > this.now()) {
        this.entries.set(id, hit); // most recently used goes last
        return copy(hit.candidates);
      }
      wipe(hit.candidates);
    }
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
      const kept = copy(fresh);
      wipe(fresh);
      this.store(id, kept);
      // Waiters copy `kept` in the microtasks that follow; after them nobody needs it.
      setImmediate(() => wipe(kept));
      return kept;
    } finally {
      this.inflight.delete(id);
    }
  }

  private store(id: string, candidates: PskCandidate[]): void {
    const ttl = candidates.length > 0 ? this.ttlMs : this.negativeTtlMs;
    if (this.closed || ttl <= 0) return;
    const old = this.entries.get(id);
    if (old) {
      this.entries.delete(id);
      wipe(old.candidates);
    }
    this.entries.set(id, { candidates: copy(candidates), expires: this.now() + ttl });
    while (this.entries.size > this.maxEntries) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldest);
      wipe(entry.candidates);
    }
  }

  /** Drops every entry (for example after a master key was withdrawn). */
  clear(): void {
    for (const e of this.entries.values()) wipe(e.candidates);
    this.entries.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clear();
    await this.inner.close();
  }
}
