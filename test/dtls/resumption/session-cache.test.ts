import { describe, expect, it } from 'vitest';
import { SESSION_ID_LENGTH, SessionCache } from '../../../src/dtls/session-cache.js';
import type { ResumableSession } from '../../../src/dtls/session-state.js';

const state = (n: number): ResumableSession => ({
  version: 0xfefd,
  cipherSuite: 0xc0a8,
  masterSecret: Buffer.alloc(48, n),
  identity: Buffer.from(`SN${n}`),
  pskTag: 'master-v1',
  extendedMasterSecret: true,
  encryptThenMac: false,
  issuedAt: 0,
});

describe('SessionCache', () => {
  it('finds a session by the ID it was added under, not by another or an empty one', () => {
    const cache = new SessionCache({ maxEntries: 10, ttlMs: 60_000 });
    const id = SessionCache.newSessionId();
    expect(id).toHaveLength(SESSION_ID_LENGTH);
    cache.add(id, state(1));
    expect(cache.get(Buffer.from(id))).toEqual(state(1));
    expect(cache.get(SessionCache.newSessionId())).toBeUndefined();
    expect(cache.get(Buffer.alloc(0))).toBeUndefined();
    expect(cache.get(Buffer.alloc(33))).toBeUndefined();
  });

  it('keeps its own copy, and hands out copies of the master secret', () => {
    const cache = new SessionCache({ maxEntries: 10, ttlMs: 60_000 });
    const id = SessionCache.newSessionId();
    const s = state(2);
    cache.add(id, s);
    s.masterSecret.fill(0);
    const got = cache.get(id)!;
    expect(got.masterSecret).toEqual(Buffer.alloc(48, 2));
    cache.delete(id); // wipes the cache's copy...
    expect(got.masterSecret).toEqual(Buffer.alloc(48, 2)); // ...not the one a handshake holds
    expect(cache.get(id)).toBeUndefined();
  });

  it('is bounded: the least recently used session goes first', () => {
    const cache = new SessionCache({ maxEntries: 3, ttlMs: 60_000 });
    const ids = [0, 1, 2, 3].map(() => SessionCache.newSessionId());
    cache.add(ids[0]!, state(0));
    cache.add(ids[1]!, state(1));
    cache.add(ids[2]!, state(2));
    cache.get(ids[0]!);
    cache.add(ids[3]!, state(3));
    expect(cache.size).toBe(3);
    expect(cache.get(ids[1]!)).toBeUndefined();
    expect(cache.get(ids[0]!)).toBeDefined();
  });

  it('forgets sessions older than its TTL', () => {
    let now = 1_000_000;
    const cache = new SessionCache({ maxEntries: 10, ttlMs: 5_000, now: () => now });
    const id = SessionCache.newSessionId();
    cache.add(id, state(4));
    now += 4_999;
    expect(cache.get(id)).toBeDefined();
    now += 2;
    expect(cache.get(id)).toBeUndefined();
  });
});
