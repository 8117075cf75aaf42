/**
 * HMAC-SHA256 (RFC 2104): H((K ^ opad) ‖ H((K ^ ipad) ‖ m)), on the SHA-256 of sha256.ts.
 *
 * A handshake computes about fourteen HMACs (cookie, PRF for the master secret, the key block and
 * both Finished messages), each over a few dozen bytes, and every HMAC of one P_SHA256 is under
 * the same key. The two padded key blocks are compressed once, when the key is given; each HMAC
 * then starts from those states: for a message of up to 55 bytes two compressions, nothing
 * allocated and no native call, where node's hash() twice, over 64 + n and 96 bytes, cost about
 * three times as much here.
 */
import { hash } from 'node:crypto';
import { BLOCK_BYTES, DIGEST_BYTES, INITIAL_STATE, MESSAGE_SCRATCH, MESSAGE_SCRATCH_BYTES, compress, digestBytes, finishHash, wipeScratch } from './sha256.js';

/** The running state every HMAC uses in turn: each digest runs to its end synchronously. */
const state = new Int32Array(8);

export class HmacSha256 {
  /** The state after (K ^ ipad), and after (K ^ opad). */
  private readonly inner = new Int32Array(8);
  private readonly outer = new Int32Array(8);

  constructor(key: Buffer) {
    const k = key.length > BLOCK_BYTES ? hash('sha256', key, 'buffer') : key;
    const pad = new Uint8Array(BLOCK_BYTES);
    for (const [value, midstate] of [[0x36, this.inner], [0x5c, this.outer]] as const) {
      pad.fill(value);
      for (let i = 0; i < k.length; i++) pad[i]! ^= k[i]!;
      midstate.set(INITIAL_STATE);
      compress(midstate, pad, 0);
    }
    pad.fill(0);
    wipeScratch();
    if (k !== key) k.fill(0);
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
    state.set(this.inner);
    finishHash(state, message, length, BLOCK_BYTES);
    digestBytes(state, MESSAGE_SCRATCH, 0);
    state.set(this.outer);
    finishHash(state, MESSAGE_SCRATCH, DIGEST_BYTES, BLOCK_BYTES);
    digestBytes(state, out, offset);
    state.fill(0);
    wipeScratch();
    if (message !== MESSAGE_SCRATCH) message.fill(0);
  }

  /** Erases the padded key's states. */
  wipe(): void {
    this.inner.fill(0);
    this.outer.fill(0);
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
