import { describe, expect, it } from 'vitest';
import { DedupCache, ENTRY_OVERHEAD_BYTES } from '../../src/coap/dedup.js';
import { SessionState } from '../../src/coap/session-state.js';
import type { CoapTransport, PeerIdentity } from '../../src/coap/transport.js';

const session = () => new SessionState({ isOpen: true, send: () => true } as unknown as CoapTransport, {} as PeerIdentity);

describe('DedupCache reply storage', () => {
  it('gives back every reply byte for byte, across slab boundaries and for large replies', () => {
    const cache = new DedupCache(2 ** 40);
    const s = session();
    const replies: Buffer[] = [];
    // 3,000 replies of 1..997 bytes fill many 64 KiB slabs; every 500th is 20,000 bytes (its own buffer).
    for (let i = 0; i < 3000; i++) {
      const length = i % 500 === 499 ? 20_000 : (i * 37) % 997 + 1;
      const reply = Buffer.alloc(length, i & 0xff);
      if (length >= 2) reply.writeUInt16BE(i, length - 2); // no two replies alike
      replies.push(Buffer.from(reply));
      const e = cache.add(s, i & 0xffff, 247_000, 0);
      cache.setReply(e, reply);
      // A small reply is copied into a slab (the caller's buffer may go); a large one is kept as it is.
      if (length <= 8192) reply.fill(0);
    }
    for (let i = 0; i < 3000; i++) expect(cache.find(s, i, 1)?.reply?.equals(replies[i]!)).toBe(true);
  });

  it('counts each entry as its overhead plus its reply, and forgets a dropped session', () => {
    const cache = new DedupCache(2 ** 40);
    const s = session();
    const e = cache.add(s, 7, 247_000, 0);
    expect(cache.find(s, 7, 1)?.reply).toBeUndefined();
    cache.setReply(e, Buffer.from('reply'));
    expect(cache.bytes).toBe(ENTRY_OVERHEAD_BYTES + 5);
    cache.dropSession(s);
    expect(cache.bytes).toBe(0);
    expect(e.reply).toBeUndefined();
    expect(cache.find(s, 7, 1)).toBeUndefined();
  });
});
