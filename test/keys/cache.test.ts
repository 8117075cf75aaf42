import { describe, expect, it } from 'vitest';
import { CachingResolver } from '../../src/keys/cache.js';
import type { KeyResolver, PskCandidate } from '../../src/keys/types.js';

/** An inner resolver that counts calls, answers after a delay, and keeps what it handed out. */
class Counting implements KeyResolver {
  calls = 0;
  handedOut: PskCandidate[] = [];
  constructor(private readonly delayMs = 10, private readonly unknown = new Set<string>()) {}
  async resolve(identity: Buffer): Promise<PskCandidate[]> {
    this.calls++;
    await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.unknown.has(identity.toString())) return [];
    const c = { psk: Buffer.from(`key-of-${identity.toString()}`), keyLabel: 'k' };
    this.handedOut.push(c);
    return [c];
  }
  async close(): Promise<void> {}
}

/** The cache's own copy of an entry, looked at without making it the most recent. */
function peekEntry(cache: CachingResolver, id: string): PskCandidate[] {
  return (cache as unknown as { entries: { peek(k: string): PskCandidate[] | undefined } }).entries.peek(id)!;
}

describe('CachingResolver', () => {
  it('single-flight: concurrent resolves of one identity cost one call', async () => {
    const inner = new Counting(20);
    const cache = new CachingResolver(inner);
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.resolve(Buffer.from('SN1'))));
    expect(inner.calls).toBe(1);
    for (const r of results) expect(r[0]!.psk.toString()).toBe('key-of-SN1');
    // Each caller has its own copy: zeroing one leaves the others and the cache intact.
    results[0]![0]!.psk.fill(0);
    expect(results[1]![0]!.psk.toString()).toBe('key-of-SN1');
    expect((await cache.resolve(Buffer.from('SN1')))[0]!.psk.toString()).toBe('key-of-SN1');
    expect(inner.calls).toBe(1);
    await cache.close();
  });

  it('expires entries after the TTL', async () => {
    let now = 1000;
    const inner = new Counting(0);
    const cache = new CachingResolver(inner, { ttlMs: 500, now: () => now });
    await cache.resolve(Buffer.from('a'));
    now += 499;
    await cache.resolve(Buffer.from('a'));
    expect(inner.calls).toBe(1);
    now += 2;
    await cache.resolve(Buffer.from('a'));
    expect(inner.calls).toBe(2);
    await cache.close();
  });

  it('is bounded: the least recently used entry leaves, and its key bytes are zeroed', async () => {
    const inner = new Counting(0);
    const cache = new CachingResolver(inner, { maxEntries: 2 });
    await cache.resolve(Buffer.from('a'));
    await cache.resolve(Buffer.from('b'));
    await cache.resolve(Buffer.from('a')); // a is now the most recent
    const before = peekEntry(cache, 'b');
    await cache.resolve(Buffer.from('c')); // evicts b
    expect(cache.size).toBe(2);
    expect(before[0]!.psk.every((x) => x === 0)).toBe(true);
    expect(inner.calls).toBe(3);
    await cache.resolve(Buffer.from('a'));
    expect(inner.calls).toBe(3);
    await cache.resolve(Buffer.from('b'));
    expect(inner.calls).toBe(4);
    await cache.close();
  });

  it('zeroes what the inner resolver returned once callers have their copies', async () => {
    const inner = new Counting(0);
    const cache = new CachingResolver(inner);
    await cache.resolve(Buffer.from('z'));
    await new Promise((r) => setImmediate(r));
    expect(inner.handedOut[0]!.psk.every((x) => x === 0)).toBe(true);
    await cache.close();
  });

  it('caches unknown identities only for the negative TTL, or not at all', async () => {
    let now = 1000; // lru-cache takes a start time of 0 for "no TTL": real clocks are past it
    const inner = new Counting(0, new Set(['ghost']));
    const cache = new CachingResolver(inner, { negativeTtlMs: 100, now: () => now });
    expect(await cache.resolve(Buffer.from('ghost'))).toEqual([]);
    expect(await cache.resolve(Buffer.from('ghost'))).toEqual([]);
    expect(inner.calls).toBe(1);
    now = 1101;
    await cache.resolve(Buffer.from('ghost'));
    expect(inner.calls).toBe(2);

    const inner2 = new Counting(0, new Set(['ghost']));
    const noNeg = new CachingResolver(inner2, { negativeTtlMs: 0 });
    await noNeg.resolve(Buffer.from('ghost'));
    await noNeg.resolve(Buffer.from('ghost'));
    expect(inner2.calls).toBe(2);
  });

  it('can be disabled: every resolve reaches the inner resolver', async () => {
    const inner = new Counting(5);
    const cache = new CachingResolver(inner, { enabled: false });
    await Promise.all([cache.resolve(Buffer.from('a')), cache.resolve(Buffer.from('a'))]);
    await cache.resolve(Buffer.from('a'));
    expect(inner.calls).toBe(3);
    expect(cache.size).toBe(0);
  });

  it('does not cache failures', async () => {
    let fail = true;
    const inner: KeyResolver = {
      resolve: async () => {
        if (fail) throw new Error('HSM gone');
        return [{ psk: Buffer.from('k'), keyLabel: 'k' }];
      },
      close: async () => {},
    };
    const cache = new CachingResolver(inner);
    await expect(cache.resolve(Buffer.from('a'))).rejects.toThrow('HSM gone');
    fail = false;
    expect(await cache.resolve(Buffer.from('a'))).toHaveLength(1);
  });

  it('zeroes everything on close', async () => {
    const cache = new CachingResolver(new Counting(0));
    await cache.resolve(Buffer.from('a'));
    const entry = peekEntry(cache, 'a');
    await cache.close();
    expect(entry[0]!.psk.every((x) => x === 0)).toBe(true);
    await expect(cache.resolve(Buffer.from('a'))).rejects.toThrow(/closed/);
  });
});
