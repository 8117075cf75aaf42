import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReplyCache, installReplyCache, type CachedReply } from '../../src/coap/reply-cache.js';

// First header byte: version 1 and the type (RFC 7252 section 3): CON 0x40, NON 0x50, ACK 0x60.
const reply = (type: number, id: number): CachedReply => Buffer.from([type, 0x45, id >> 8, id & 0xff]) as CachedReply;

afterEach(() => vi.useRealTimers());

/** A cache holding one CON reply, as node-coap leaves it: its sender hung on after storing. */
function cacheWithConReply(key: string): { cache: ReplyCache; con: CachedReply; reset: ReturnType<typeof vi.fn> } {
  const cache = new ReplyCache({ ttlMs: 1000 });
  const con = reply(0x40, 2);
  cache.set(key, con);
  const reset = vi.fn();
  con.sender = { reset };
  return { cache, con, reset };
}

describe('ReplyCache (duplicate detection for node-coap)', () => {
  it('keeps a copy of a piggybacked ACK: nothing node-coap hangs on the reply afterwards is held', () => {
    const cache = new ReplyCache({ ttlMs: 1000 });
    const ack = reply(0x60, 1);
    cache.set('k', ack);
    ack.sender = { reset: () => {} }; // node-coap attaches its sender after storing
    const kept = cache.peek('k')!;
    expect(kept.equals(ack)).toBe(true);
    expect(kept).not.toBe(ack);
    expect(kept.sender).toBeUndefined();
  });

  it('keeps a CON reply itself and stops its retransmission when the entry goes', () => {
    const { cache, con, reset } = cacheWithConReply('k');
    expect(cache.peek('k')).toBe(con);
    expect(cache.delete('k')).toBe(true);
    expect(reset).toHaveBeenCalledOnce();
    expect(cache.peek('k')).toBeUndefined();
  });

  it('keeps an Observe notification with its response (a Reset ends the observation)', () => {
    const cache = new ReplyCache({ ttlMs: 1000 });
    const note = reply(0x50, 3);
    note.response = {};
    cache.set('k', note);
    expect(cache.peek('k')).toBe(note);
  });

  it('forgets replies after the exchange lifetime, oldest first', () => {
    vi.useFakeTimers();
    const cache = new ReplyCache({ ttlMs: 1000 });
    cache.set('a', reply(0x60, 1));
    vi.advanceTimersByTime(600);
    cache.set('b', reply(0x60, 2));
    vi.advanceTimersByTime(500);
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.peek('b')).toBeDefined();
    cache.purgeStale();
    expect(cache.size).toBe(1);
    vi.advanceTimersByTime(600);
    cache.purgeStale();
    expect(cache.size).toBe(0);
  });

  it('is bounded: the oldest replies make room, and a re-set key moves to the back', () => {
    const cache = new ReplyCache({ ttlMs: 60_000, maxEntries: 3 });
    for (const k of ['a', 'b', 'c']) cache.set(k, reply(0x60, 1));
    cache.set('a', reply(0x60, 9));
    cache.set('d', reply(0x60, 4));
    expect(cache.size).toBe(3);
    expect(cache.peek('b')).toBeUndefined();
    expect(cache.peek('a')!.readUInt16BE(2)).toBe(9);
    expect(cache.peek('c')).toBeDefined();
    expect(cache.peek('d')).toBeDefined();
  });

  it('clear() resets every sender', () => {
    const { cache, reset } = cacheWithConReply('k');
    cache.clear();
    expect(reset).toHaveBeenCalledOnce();
    expect(cache.size).toBe(0);
  });

  it('installs itself only where node-coap has the cache it replaces', () => {
    const server = { _lru: { clear: vi.fn() } };
    expect(installReplyCache(server, { ttlMs: 1000 })).toBeInstanceOf(ReplyCache);
    expect(server._lru).toBeInstanceOf(ReplyCache);
    expect(installReplyCache({}, { ttlMs: 1000 })).toBeUndefined();
  });
});

describe('ReplyCache bookkeeping', () => {
  it('stays small when replies are deleted out of order (ACKed CON replies)', () => {
    const cache = new ReplyCache({ ttlMs: 60_000, maxEntries: 100 });
    for (let i = 0; i < 50_000; i++) {
      cache.set(`k${i}`, Buffer.from([0x40, 0x45, 0, 0]) as CachedReply);
      if (i % 10 !== 0) cache.delete(`k${i}`);
    }
    // The last set (k49999) pushed k49000 out before it was deleted itself.
    expect(cache.size).toBe(99);
    const queue = (cache as unknown as { queue: unknown[] }).queue;
    expect(queue.length).toBeLessThan(2 * (2 * 100 + 4096 + 1));
    // What is kept is the newest of those never deleted.
    expect(cache.peek('k49990')).toBeDefined();
    expect(cache.peek('k49010')).toBeDefined();
    expect(cache.peek('k49000')).toBeUndefined();
  });
});
