/**
 * Sessions kept by the server for resumption by session ID (RFC 5246 7.3, 7.4.1.2): bounded in
 * entries and in age. lru-cache gives O(1) recency and eviction (a Map used as an LRU is slow
 * to evict, see CONTRIBUTING.md). A session ID is 32 random bytes, so one the cache did not
 * issue is found only by luck; a miss is a full handshake, never an error.
 */

import { LRUCache } from 'lru-cache';
import { publicRandomBytes } from './public-random.js';
import { type ResumableSession, ownCopy } from './session-state.js';

export const SESSION_ID_LENGTH = 32;

export interface SessionCacheOptions {
  /** Sessions kept at most; the least recently used one goes first. */
  maxEntries: number;
  /** A session older than this (from its full handshake) is not resumed. */
  ttlMs: number;
  /** Clock in ms (tests); Date.now by default. */
  now?: () => number;
}

export class SessionCache {
  private readonly entries: LRUCache<string, ResumableSession>;

  constructor(options: SessionCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) throw new RangeError('maxEntries must be ≥ 1');
    if (!(options.ttlMs >= 1)) throw new RangeError('ttlMs must be ≥ 1');
    this.entries = new LRUCache<string, ResumableSession>({
      max: options.maxEntries,
      ttl: options.ttlMs,
      ttlResolution: 0,
      perf: { now: options.now ?? Date.now },
      // An evicted or expired session's master secret is wiped, not left for the GC.
      dispose: (state) => state.masterSecret.fill(0),
    });
  }

  /** A fresh session ID for a ServerHello (its memory is its own). */
  static newSessionId(): Buffer {
    return publicRandomBytes(SESSION_ID_LENGTH);
  }

  /** Keeps a copy of `state` (the caller may wipe or reuse its buffers). */
  add(sessionId: Buffer, state: ResumableSession): void {
    if (sessionId.length === 0 || sessionId.length > 32) throw new RangeError('session ID must be 1..32 bytes');
    const copy = { ...state, masterSecret: ownCopy(state.masterSecret), identity: ownCopy(state.identity) };
    this.entries.set(sessionId.toString('latin1'), copy);
  }

  /**
   * The session for an ID from a ClientHello; undefined for empty, unknown or expired IDs. The
   * master secret is a copy: the cache wipes its own when the entry goes, which may happen while
   * the handshake that resumes it still runs.
   */
  get(sessionId: Buffer): ResumableSession | undefined {
    if (sessionId.length === 0 || sessionId.length > 32) return undefined;
    const state = this.entries.get(sessionId.toString('latin1'));
    return state && { ...state, masterSecret: ownCopy(state.masterSecret) };
  }

  /** RFC 5246 7.2.2: a session that ended with a fatal alert must not be resumed. */
  delete(sessionId: Buffer): void {
    this.entries.delete(sessionId.toString('latin1'));
  }

  get size(): number {
    return this.entries.size;
  }
}
