/**
 * The handshake reassembler under arbitrary, hostile fragment streams: it never throws, never
 * holds more than its byte bound, and releases exactly the messages that were sent, in order,
 * however they were cut, reordered, repeated or overlapped.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HandshakeFragment, parseHandshakeFragments } from '../../src/dtls/handshake/header.js';
import { HandshakeReassembler } from '../../src/dtls/reassembler.js';
import { loadCorpus } from './corpus.js';
import { inputArb } from './mutate.js';

/** What the reassembler holds, counted from its partial messages (not its own counter). */
function held(r: HandshakeReassembler): { counted: number; actual: number; partials: number } {
  const inner = r as unknown as { bufferedBytes: number; partials: Map<number, { body: Buffer }> };
  let actual = 0;
  for (const p of inner.partials.values()) actual += p.body.length;
  return { counted: inner.bufferedBytes, actual, partials: inner.partials.size };
}

const fragmentArb: fc.Arbitrary<HandshakeFragment> = fc
  .record({
    msgType: fc.constantFrom(1, 16, 20, 2, 0, 255),
    length: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 40_000 }), fc.constantFrom(16_384, 16_385, 0xffffff)),
    seqDelta: fc.integer({ min: -2, max: 10 }),
    offset: fc.nat({ max: 0xffffff }),
    fragLen: fc.nat({ max: 2000 }),
  })
  .map(({ msgType, length, seqDelta, offset, fragLen }) => {
    const fragmentOffset = length === 0 ? 0 : offset % (length + 1);
    const fragmentLength = Math.min(fragLen, length - fragmentOffset);
    return { msgType, length, messageSeq: 1 + seqDelta, fragmentOffset, fragmentLength, body: Buffer.alloc(fragmentLength, 0xa5) };
  })
  .filter((f) => f.messageSeq >= 0);

describe('HandshakeReassembler', () => {
  it('never holds more than maxBytes, whatever fragments arrive', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20_000 }), fc.array(fragmentArb, { maxLength: 60 }), (maxBytes, fragments) => {
        const r = new HandshakeReassembler(1, maxBytes);
        for (const f of fragments) {
          r.add(f);
          const h = held(r);
          expect(h.counted).toBe(h.actual);
          expect(h.actual).toBeLessThanOrEqual(maxBytes);
          expect(h.partials).toBeLessThanOrEqual(8);
          for (let m = r.next(); m; m = r.next()) expect(m.body.length).toBeLessThanOrEqual(maxBytes);
        }
        r.clear();
        expect(held(r)).toEqual({ counted: 0, actual: 0, partials: 0 });
      }),
      { numRuns: 1500 },
    );
  });

  it('never throws on fragments parsed from mutated real flights', () => {
    const corpus = loadCorpus()['handshake-fragments'];
    fc.assert(
      fc.property(fc.array(inputArb(corpus, 600), { maxLength: 12 }), (records) => {
        const r = new HandshakeReassembler(0, 4096);
        for (const rec of records) {
          for (const f of parseHandshakeFragments(rec) ?? []) {
            expect(f.fragmentOffset + f.fragmentLength).toBeLessThanOrEqual(f.length);
            r.add(f);
            expect(held(r).actual).toBeLessThanOrEqual(4096);
          }
          while (r.next());
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('releases the sent messages in order however they were cut, shuffled, repeated or overlapped', () => {
    const messages = fc.array(fc.uint8Array({ maxLength: 700 }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(messages, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 300 })), { minLength: 1, maxLength: 40 }), fc.infiniteStream(fc.nat()), (bodies, cuts, order) => {
        const r = new HandshakeReassembler(5, 16_384);
        const frags: HandshakeFragment[] = [];
        bodies.forEach((b, i) => {
          const body = Buffer.from(b);
          const push = (off: number, len: number) =>
            frags.push({ msgType: 16 + i, length: body.length, messageSeq: 5 + i, fragmentOffset: off, fragmentLength: len, body: body.subarray(off, off + len) });
          // Random (possibly overlapping) pieces, then a clean cover so the message is complete.
          for (const [start, len] of cuts) {
            const off = body.length === 0 ? 0 : start % body.length;
            push(off, Math.min(len, body.length - off));
          }
          for (let off = 0; off < body.length || (off === 0 && body.length === 0); off += 250) {
            push(off, Math.min(250, body.length - off));
            if (body.length === 0) break;
          }
        });
        const it = order[Symbol.iterator]();
        for (let i = frags.length - 1; i > 0; i--) {
          const j = it.next().value % (i + 1);
          [frags[i], frags[j]] = [frags[j], frags[i]];
        }
        const out: Buffer[] = [];
        for (const f of frags) {
          // Pieces of a message already released are 'old'; nothing is ever refused.
          expect(['accepted', 'old']).toContain(r.add(f));
          for (let m = r.next(); m; m = r.next()) out.push(m.body);
        }
        expect(out.map((b) => b.toString('hex'))).toEqual(bodies.map((b) => Buffer.from(b).toString('hex')));
        expect(held(r).actual).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});
