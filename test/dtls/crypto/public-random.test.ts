import { describe, expect, it } from 'vitest';
import { publicRandomBytes } from '../../../src/dtls/public-random.js';

describe('publicRandomBytes', () => {
  it('hands out distinct bytes across pool refills, never all zero', () => {
    // 400 × 32 bytes is more than three 4 KiB pools: the refills are crossed.
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const b = publicRandomBytes(32);
      expect(b.length).toBe(32);
      expect(b.equals(Buffer.alloc(32))).toBe(false);
      seen.add(b.toString('hex'));
    }
    expect(seen.size).toBe(400);
  });

  it('returns memory of its own, not a view into the pool', () => {
    const a = publicRandomBytes(32);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer.byteLength).toBe(32);
    const copy = Buffer.from(a);
    publicRandomBytes(32);
    expect(a.equals(copy)).toBe(true);
  });

  it('refuses more than a pool', () => {
    expect(() => publicRandomBytes(4097)).toThrow(RangeError);
  });
});
