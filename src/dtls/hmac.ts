/**
 * HMAC-SHA256 (RFC 2104): H((K ^ opad) ‖ H((K ^ ipad) ‖ m)), on the SHA-256 of sha256.ts.
 *
 * A handshake computes about fourteen HMACs (cookie, PRF for the master secret, the key block and
 * both Finished messages), each over a few dozen bytes, and every HMAC of one P_SHA256 is under
 * the same key. The two padded key blocks are compressed once, when the key is given; each HMAC
 * then starts from those states: for a message of up to 55 bytes two compressions, nothing
 * allocated and no native call. On node's hash() (two calls per HMAC, over 64 + n and 96 bytes,
 * each a native call and a new Buffer) the cookie and PRF of one handshake took 31-37 µs here;
 * now 22 (same-process microbenchmark, CONTRIBUTING).
 */
import { hash } from 'node:crypto';
import { BLOCK_BYTES, DIGEST_BYTES, INITIAL_STATE, MESSAGE_SCRATCH, MESSAGE_SCRATCH_BYTES, compress, digestBytes, finishHash, wipeScratch } from './sha256.js';

/** The running state every HMAC uses in turn: each digest runs to its end synchronously. */
const state = new Int32Array(8);

export class HmacSha256 {
  /** The state after (K ^ ipad) in words 0-7, after (K ^ opad) in words 8-15. */
  private readonly states = new Int32Array(16);

  constructor(key: Buffer) {
    const k = key.length > BLOCK_BYTES ? hash('sha256', key, 'buffer') : key;
    this.absorbPaddedKey(k, 0x36, 0);
    this.absorbPaddedKey(k, 0x5c, 8);
    wipeScratch();
    if (k !== key) k.fill(0);
  }

  /** The state after one block of K ^ pad (RFC 2104: K zero-padded to the block), into words `at` to `at` + 7. */
  private absorbPaddedKey(k: Uint8Array, pad: number, at: number): void {
    const block = MESSAGE_SCRATCH;
    block.fill(pad, 0, BLOCK_BYTES);
    for (let i = 0; i < k.length; i++) block[i]! ^= k[i]!;
    state.set(INITIAL_STATE);
    compress(state, block, 0);
    for (let i = 0; i < 8; i++) this.states[at + i] = state[i]!;
    state.fill(0);
  }

  /** HMAC over the concatenation of `parts`. */
  digest(...parts: Uint8Array[]): Buffer {
    const out = Buffer.allocUnsafe(DIGEST_BYTES);
    this.digestInto(out, 0, parts);
    return out;
  }

  /** HMAC over the concatenation of `parts`, written into `out` at `offset` (32 bytes); `out` may be one of the parts. */
  digestInto(out: Uint8Array, offset: number, parts: readonly Uint8Array[]): void {
    let length = 0;
    for (const p of parts) length += p.length;
    // Short messages (all of the handshake's) are gathered in the hash's own scratch space.
    const message = length <= MESSAGE_SCRATCH_BYTES ? gather(parts) : Buffer.concat(parts, length);
    this.startFrom(0);
    finishHash(state, message, length, BLOCK_BYTES);
    digestBytes(state, MESSAGE_SCRATCH, 0);
    this.startFrom(8);
    finishHash(state, MESSAGE_SCRATCH, DIGEST_BYTES, BLOCK_BYTES);
    digestBytes(state, out, offset);
    state.fill(0);
    wipeScratch();
    if (message !== MESSAGE_SCRATCH) message.fill(0);
  }

  private startFrom(at: number): void {
    for (let i = 0; i < 8; i++) state[i] = this.states[at + i]!;
  }

  /** Erases the padded key's states. */
  wipe(): void {
    this.states.fill(0);
  }
}

function gather(parts: readonly Uint8Array[]): Uint8Array {
  let at = 0;
  for (const p of parts) {
    MESSAGE_SCRATCH.set(p, at);
    at += p.length;
  }
  return MESSAGE_SCRATCH;
}
