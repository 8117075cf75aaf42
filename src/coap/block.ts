/**
 * Block-wise transfers (RFC 7959).
 *
 * Block1 (uploads): the blocks of one body are tied by session, method, Uri-Path and
 * Request-Tag (RFC 9175), not by token: RFC 7959 lets a client use a new token per block, and
 * libcoap does. A block must start exactly where the body received so far ends (else 4.08), and
 * the body may not grow past the bound (else 4.13 with Size1, section 2.9.3). Memory is taken
 * only for the bytes that arrived: a block's NUM is a position, never an allocation size.
 *
 * Block2 (downloads): a response larger than the block size the client asked for (or 1024
 * bytes) is sent block by block; each further block is a new request, which the handler answers
 * again (the resource is read again, as RFC 7959 2.4 allows).
 */
import { blockSize, type BlockValue } from './options.js';
import type { SessionState } from './session-state.js';
import { EXCHANGE_LIFETIME_MS } from './dedup.js';

/** The largest block this server sends or asks for: 1024 bytes (SZX 6), one record under a 1280-byte MTU. */
export const MAX_SZX = 6;
/** Uploads in progress per session at most; a new one beyond it replaces the oldest. */
export const MAX_BLOCK1_PER_SESSION = 2;

export class Block1Assembly {
  readonly chunks: Buffer[] = [];
  received = 0;
  constructor(public expires: number) {}
}

/**
 * The bytes held by unfinished uploads over all sessions: past `maxBytes`, a block that would
 * add to them is refused with 5.03 (RFC 7252 5.9.3.4) until uploads finish, fail or their
 * sessions end. Without it, every authenticated device could hold MAX_BLOCK1_PER_SESSION ×
 * maxBlock1Body of the server's memory.
 */
export class Block1Budget {
  used = 0;
  constructor(readonly maxBytes: number) {}
}

/** Drops one upload and gives its bytes back. */
export function dropAssembly(state: SessionState, key: string, budget: Block1Budget): void {
  const a = state.block1.get(key);
  if (a === undefined) return;
  budget.used -= a.received;
  state.block1.delete(key);
}

/** The session ended: all its uploads go. */
export function dropAssemblies(state: SessionState, budget: Block1Budget): void {
  for (const a of state.block1.values()) budget.used -= a.received;
  state.block1.clear();
}

export type Block1Outcome =
  | { kind: 'continue'; szx: number }
  | { kind: 'complete'; body: Buffer }
  | { kind: 'incomplete' }
  | { kind: 'too-large' }
  | { kind: 'busy' }
  | { kind: 'bad' };

/** One block of an upload: what to answer, and the whole body once the last block is in. */
export function acceptBlock1(
  state: SessionState,
  key: string,
  block: BlockValue,
  payload: Buffer,
  maxBody: number,
  budget: Block1Budget,
  now: number,
): Block1Outcome {
  const size = blockSize(block.szx);
  const offset = block.num * size;
  if (payload.length > size || (block.more && payload.length !== size)) {
    dropAssembly(state, key, budget);
    return { kind: 'bad' };
  }
  if (offset + payload.length > maxBody) {
    dropAssembly(state, key, budget);
    return { kind: 'too-large' };
  }
  let a = state.block1.get(key);
  if (block.num === 0) {
    dropAssembly(state, key, budget);
    if (state.block1.size >= MAX_BLOCK1_PER_SESSION) dropAssembly(state, state.block1.keys().next().value!, budget);
    a = new Block1Assembly(now + EXCHANGE_LIFETIME_MS);
    state.block1.set(key, a);
  } else if (a === undefined || a.expires <= now || a.received !== offset) {
    dropAssembly(state, key, budget);
    return { kind: 'incomplete' };
  }
  if (block.more && budget.used + payload.length > budget.maxBytes) {
    dropAssembly(state, key, budget);
    return { kind: 'busy' };
  }
  if (payload.length > 0) {
    // Its own memory: the payload is a view into the datagram.
    const copy = Buffer.allocUnsafeSlow(payload.length);
    payload.copy(copy);
    a.chunks.push(copy);
    a.received += payload.length;
    budget.used += payload.length;
  }
  a.expires = now + EXCHANGE_LIFETIME_MS;
  if (block.more) return { kind: 'continue', szx: Math.min(block.szx, MAX_SZX) };
  dropAssembly(state, key, budget);
  return { kind: 'complete', body: Buffer.concat(a.chunks, a.received) };
}

/** The slice of a response body one Block2 request asks for; undefined when NUM lies past its end. */
export function block2Slice(body: Buffer, num: number, szx: number): { part: Buffer; more: boolean } | undefined {
  const size = blockSize(szx);
  const start = num * size;
  if (start > 0 && start >= body.length) return undefined;
  const end = Math.min(start + size, body.length);
  return { part: body.subarray(start, end), more: end < body.length };
}
