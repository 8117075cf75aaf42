import { describe, expect, it } from 'vitest';
import { DedupCache, EXCHANGES_PER_SESSION, NO_ENTRY } from '../../src/coap/dedup.js';
import { SessionState } from '../../src/coap/session-state.js';
import type { CoapTransport, PeerIdentity } from '../../src/coap/transport.js';

const session = () => new SessionState({ isOpen: true, send: () => true } as unknown as CoapTransport, {} as PeerIdentity);
const MiB = 1024 * 1024;

/** A reply no other reply equals: `length` bytes of `i`, its last two bytes the number itself. */
function replyOf(i: number, length: number): Buffer {
  const reply = Buffer.alloc(length, i & 0xff);
  if (length >= 2) reply.writeUInt16BE(i & 0xffff, length - 2);
  return reply;
}

describe('DedupCache', () => {
  it('gives back every reply byte for byte, though the caller reuses its buffer', () => {
    const cache = new DedupCache(16 * MiB);
    const sessions = Array.from({ length: 500 }, session);
    const kept: Array<{ s: SessionState; mid: number; reply: Buffer }> = [];
    for (let i = 0; i < 3000; i++) {
      const s = sessions[i % sessions.length]!;
      const reply = replyOf(i, ((i * 37) % 997) + 1);
      kept.push({ s, mid: i, reply: Buffer.from(reply) });
      cache.setReply(cache.add(s, i, 247_000, 0), reply);
      reply.fill(0);
    }
    for (const { s, mid, reply } of kept) expect(cache.reply(cache.find(s, mid, 1))?.equals(reply)).toBe(true);
  });

  it('finds a Message ID only in its own session, and only until it expires', () => {
    const cache = new DedupCache(MiB);
    const a = session();
    const b = session();
    const e = cache.add(a, 7, 1000, 0);
    expect(cache.find(a, 7, 999)).toBe(e);
    expect(cache.find(b, 7, 999)).toBe(NO_ENTRY);
    expect(cache.find(a, 8, 999)).toBe(NO_ENTRY);
    expect(cache.find(a, 7, 1000)).toBe(NO_ENTRY);
  });

  it('looks for duplicates among the last EXCHANGES_PER_SESSION requests of a session', () => {
    const cache = new DedupCache(MiB);
    const s = session();
    for (let mid = 0; mid <= EXCHANGES_PER_SESSION; mid++) cache.add(s, mid, 247_000, 0);
    expect(cache.find(s, 0, 1)).toBe(NO_ENTRY);
    for (let mid = 1; mid <= EXCHANGES_PER_SESSION; mid++) expect(cache.find(s, mid, 1)).not.toBe(NO_ENTRY);
  });

  it('stays within its bound: past it the oldest entries go, and a reply written over is never given for another', () => {
    const bound = 64 * 1024;
    const cache = new DedupCache(bound);
    const sessions = Array.from({ length: 20_000 }, session);
    const replies = new Map<number, Buffer>();
    const entries: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const reply = replyOf(i, 40 + (i % 200));
      replies.set(i, reply);
      const e = cache.add(sessions[i]!, i, 247_000, 0);
      cache.setReply(e, reply);
      entries.push(e);
      expect(cache.bytes).toBeLessThanOrEqual(bound);
    }
    expect(cache.find(sessions[0]!, 0, 1)).toBe(NO_ENTRY);
    expect(cache.find(sessions[19_999]!, 19_999, 1)).not.toBe(NO_ENTRY);
    let given = 0;
    for (let i = 0; i < 20_000; i++) {
      const reply = cache.reply(entries[i]!);
      if (reply === undefined) continue;
      given++;
      expect(reply.equals(replies.get(i)!)).toBe(true);
    }
    expect(given).toBeGreaterThan(100);
    expect(given).toBeLessThan(1000);
  });

  it('keeps no reply for an entry that was written over, even when it is set later', () => {
    const cache = new DedupCache(4096);
    const s = session();
    const first = cache.add(s, 1, 247_000, 0);
    for (let i = 0; i < 1000; i++) cache.add(session(), i, 247_000, 0);
    cache.setReply(first, Buffer.from('late'));
    expect(cache.reply(first)).toBeUndefined();
  });

  it('forgets a dropped session', () => {
    const cache = new DedupCache(MiB);
    const s = session();
    const e = cache.add(s, 7, 247_000, 0);
    cache.setReply(e, Buffer.from('reply'));
    cache.dropSession(s);
    expect(cache.find(s, 7, 1)).toBe(NO_ENTRY);
  });

  it('with a bound of 0 keeps nothing and says so', () => {
    const cache = new DedupCache(0);
    const s = session();
    const e = cache.add(s, 7, 247_000, 0);
    expect(e).toBe(NO_ENTRY);
    cache.setReply(e, Buffer.from('reply'));
    expect(cache.find(s, 7, 1)).toBe(NO_ENTRY);
    expect(cache.bytes).toBe(0);
  });
});
