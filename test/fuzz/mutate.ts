/**
 * Mutations of corpus entries as fast-check arbitraries: bit flips, byte edits, truncations,
 * insertions and deletions, length-field edits (interesting values written as u8/u16/u24 at
 * any offset) and splices of two entries. Shrinking works on the list of operations, so a
 * failing case comes back as the smallest set of edits that still breaks the parser.
 */
import fc from 'fast-check';

export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'delete'; at: number; n: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'length'; at: number; width: 1 | 2 | 3; value: number }
  | { op: 'splice'; at: number; other: number; from: number }
  | { op: 'duplicate'; at: number; n: number };

/** Values that sit on the edges of the length checks: 0, 1, maxima, and small deltas. */
const INTERESTING = [0, 1, 2, 12, 13, 31, 32, 33, 0x7f, 0x80, 0xfe, 0xff, 0x100, 0x3fff, 0x4000, 0x4800, 0x4801, 0xfffe, 0xffff, 0x10000, 0xffffff];

const position = fc.nat({ max: 0xffff }); // taken modulo the current length

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: position, value: fc.oneof(fc.constantFrom(0, 1, 0x7f, 0x80, 0xfe, 0xff), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('delete' as const), at: position, n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
  fc.record({
    op: fc.constant('length' as const),
    at: position,
    width: fc.constantFrom(1 as const, 2 as const, 3 as const),
    value: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 0xffffff })),
  }),
  fc.record({ op: fc.constant('splice' as const), at: position, other: fc.nat(), from: position }),
  fc.record({ op: fc.constant('duplicate' as const), at: position, n: fc.integer({ min: 1, max: 64 }) }),
);

export function applyMutation(input: Buffer, m: Mutation, pool: readonly Buffer[]): Buffer {
  const len = input.length;
  const at = len === 0 ? 0 : m.at % (len + (m.op === 'insert' || m.op === 'truncate' ? 1 : 0));
  switch (m.op) {
    case 'flip': {
      if (len === 0) return input;
      const out = Buffer.from(input);
      out[at] ^= 1 << m.bit;
      return out;
    }
    case 'set': {
      if (len === 0) return input;
      const out = Buffer.from(input);
      out[at] = m.value;
      return out;
    }
    case 'truncate':
      return Buffer.from(input.subarray(0, at));
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.n)]);
    case 'insert':
      return Buffer.concat([input.subarray(0, at), Buffer.from(m.bytes), input.subarray(at)]);
    case 'length': {
      if (len < m.width) return input;
      const out = Buffer.from(input);
      const where = at % (len - m.width + 1);
      out.writeUIntBE(m.value % 256 ** m.width, where, m.width);
      return out;
    }
    case 'splice': {
      const other = pool.length === 0 ? input : pool[m.other % pool.length];
      const from = other.length === 0 ? 0 : m.from % other.length;
      return Buffer.concat([input.subarray(0, at), other.subarray(from)]);
    }
    case 'duplicate': {
      const chunk = input.subarray(at, at + m.n);
      return Buffer.concat([input.subarray(0, at + chunk.length), chunk, input.subarray(at + chunk.length)]);
    }
  }
}

/** A corpus entry with 1..maxOps mutations applied, the others in `pool` available to splices. */
export function mutatedArb(pool: readonly Buffer[], maxOps = 4): fc.Arbitrary<Buffer> {
  if (pool.length === 0) throw new Error('mutatedArb: empty corpus');
  return fc
    .tuple(fc.nat({ max: pool.length - 1 }), fc.array(mutationArb, { minLength: 1, maxLength: maxOps }))
    .map(([i, ops]) => ops.reduce((b, m) => applyMutation(b, m, pool), pool[i]));
}

/** Arbitrary bytes, mutated corpus entries, and untouched entries, in one mix. */
export function inputArb(pool: readonly Buffer[], maxLength = 512): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength }).map((a) => Buffer.from(a)) },
    { weight: 5, arbitrary: mutatedArb(pool) },
    { weight: 1, arbitrary: fc.constantFrom(...pool) },
  );
}
