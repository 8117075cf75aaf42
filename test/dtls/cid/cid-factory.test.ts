import { describe, expect, it } from 'vitest';
import { CidFactory, DEFAULT_CID_LENGTH } from '../../../src/dtls/cid-factory.js';

describe('CidFactory', () => {
  it('makes fresh CIDs of the set length (6 by default in the settings)', () => {
    const f = new CidFactory({ length: DEFAULT_CID_LENGTH });
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(f.create()!.toString('hex'));
    expect(DEFAULT_CID_LENGTH).toBe(6);
    expect(seen.size).toBe(1000);
    for (const c of seen) expect(c).toHaveLength(12);
  });

  it('carries a route that any holder of the secret reads back', () => {
    const secret = Buffer.alloc(32, 7);
    const a = new CidFactory({ length: 8, routeBytes: 2, secret });
    const b = new CidFactory({ length: 8, routeBytes: 2, secret });
    for (const route of [0, 1, 0x0203, 0xffff]) expect(b.routeOf(a.create(route)!)).toBe(route);
    expect(b.routeOf(Buffer.alloc(6))).toBeUndefined();
  });

  it('does not show the route in clear: the same route gives different route bytes', () => {
    const f = new CidFactory({ length: 6, routeBytes: 2 });
    const tails = new Set<string>();
    for (let i = 0; i < 64; i++) tails.add(f.create(0x0102)!.subarray(4).toString('hex'));
    // 64 draws from 2^16 masked values: all alike would mean the route is visible.
    expect(tails.size).toBeGreaterThan(32);
  });

  it('another secret reads another route', () => {
    const mine = new CidFactory({ length: 6, routeBytes: 2, secret: Buffer.alloc(16, 1) });
    const other = new CidFactory({ length: 6, routeBytes: 2, secret: Buffer.alloc(16, 2) });
    // Each read matches by luck with chance 2^-16; all four, 2^-64.
    const routes = [1, 2, 3, 4].map(() => other.routeOf(mine.create(5)!));
    expect(routes.filter((r) => r !== 5).length).toBeGreaterThan(0);
  });

  it('skips CIDs in use and gives up after a bounded number of tries', () => {
    const f = new CidFactory({ length: 4 });
    let calls = 0;
    expect(f.create(0, () => (calls++, true))).toBeUndefined();
    expect(calls).toBe(8);
    let first = true;
    const cid = f.create(0, () => (first ? ((first = false), true) : false));
    expect(cid).toHaveLength(4);
  });

  it('refuses lengths that leave fewer than 32 random bits, routes that do not fit, short secrets', () => {
    expect(() => new CidFactory({ length: 3 })).toThrow(/CID length 3/);
    expect(() => new CidFactory({ length: 5, routeBytes: 2 })).toThrow(/must be 6\.\.255/);
    expect(() => new CidFactory({ length: 256 })).toThrow(RangeError);
    expect(() => new CidFactory({ length: 6, routeBytes: 5 })).toThrow(RangeError);
    expect(() => new CidFactory({ length: 6, secret: Buffer.alloc(8) })).toThrow(/secret/);
    expect(() => new CidFactory({ length: 6, routeBytes: 1 }).create(256)).toThrow(/route 256/);
  });
});
