/**
 * AES-CCM (NIST SP 800-38C, RFC 3610) with 12-byte nonces, on two cipher objects made once per
 * key instead of one createCipheriv() per record.
 *
 * node's aes-128-ccm needs a fresh cipher object for every nonce, and each one runs the AES key
 * schedule again, plus five native calls (setAAD, update, final, getAuthTag...): about 6 µs a
 * record here, the largest cost of a small CoAP exchange. CCM is CBC-MAC plus CTR, and both are
 * plain AES block operations under the one key:
 *  - CBC-MAC over B0 ‖ encoded AAD ‖ payload (each zero-padded to 16 bytes) is the last block of
 *    AES-CBC with a zero IV. A long-lived aes-128-cbc cipher carries its last output block as the
 *    next IV, so the first input block is XORed with that block first: the chain then starts
 *    from zero, as CBC-MAC requires, in one update() call.
 *  - The CTR keystream E(Ctr_0) ‖ E(Ctr_1) ‖ ... is ECB over the counter blocks: one update()
 *    call on a long-lived aes-128-ecb cipher.
 * Verified against SP 800-38C's examples and against node's own aes-128-ccm (tests).
 */
import { createCipheriv, timingSafeEqual, type Cipher } from 'node:crypto';

const BLOCK = 16;
export const CCM_NONCE_LENGTH = 12;
/** q in SP 800-38C: bytes of the length field, 15 - nonce length. */
const Q = 15 - CCM_NONCE_LENGTH;
/** AAD lengths up to here are encoded in 2 bytes (SP 800-38C A.2.2); TLS uses 13. */
const MAX_SHORT_AAD = 0xfeff;
/** Plaintexts must fit in the 3-byte length field. */
const MAX_PAYLOAD = (1 << (8 * Q)) - 1;

const roundUp = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

export class AesCcm {
  private readonly cbc: Cipher;
  private readonly ecb: Cipher;
  /** The CBC cipher's current IV: its last output block. */
  private readonly chain = Buffer.alloc(BLOCK);
  private readonly b0Flags: number;

  constructor(key: Buffer, readonly tagLength: number) {
    if (tagLength < 4 || tagLength > 16 || tagLength % 2 !== 0) throw new RangeError(`CCM tag of ${tagLength} bytes`);
    const algorithm = `aes-${key.length * 8}`;
    // No setAutoPadding(false): padding is added by final() alone, which these never call.
    this.cbc = createCipheriv(`${algorithm}-cbc`, key, this.chain);
    this.ecb = createCipheriv(`${algorithm}-ecb`, key, null);
    // B0 flags: Adata (AAD is never empty in TLS, but the examples have both), M', L'.
    this.b0Flags = (((tagLength - 2) / 2) << 3) | (Q - 1);
  }

  /** ciphertext ‖ tag, written into `out` at `offset`. */
  seal(nonce: Buffer, aad: Buffer, plaintext: Buffer, out: Buffer, offset: number): void {
    checkSizes(nonce, aad, plaintext.length);
    const tag = this.cbcMac(nonce, aad, plaintext);
    const keystream = this.keystream(nonce, plaintext.length);
    for (let i = 0; i < plaintext.length; i++) out[offset + i] = plaintext[i]! ^ keystream[BLOCK + i]!;
    const tagAt = offset + plaintext.length;
    for (let i = 0; i < this.tagLength; i++) out[tagAt + i] = tag[i]! ^ keystream[i]!;
  }

  /** The plaintext when the tag verifies, else undefined. */
  open(nonce: Buffer, aad: Buffer, ciphertext: Buffer, tag: Buffer): Buffer | undefined {
    if (tag.length !== this.tagLength) return undefined;
    checkSizes(nonce, aad, ciphertext.length);
    const keystream = this.keystream(nonce, ciphertext.length);
    const plaintext = Buffer.allocUnsafe(ciphertext.length);
    for (let i = 0; i < ciphertext.length; i++) plaintext[i] = ciphertext[i]! ^ keystream[BLOCK + i]!;
    const expected = this.cbcMac(nonce, aad, plaintext);
    for (let i = 0; i < this.tagLength; i++) expected[i] ^= keystream[i]!;
    if (timingSafeEqual(expected.subarray(0, this.tagLength), tag)) return plaintext;
    plaintext.fill(0);
    return undefined;
  }

  /** The unencrypted tag T (16 bytes; the first tagLength count), a view of the CBC output. */
  private cbcMac(nonce: Buffer, aad: Buffer, payload: Buffer): Buffer {
    const aadBlocks = aad.length === 0 ? 0 : roundUp(2 + aad.length);
    const input = scratch(BLOCK + aadBlocks + roundUp(payload.length));
    input[0] = this.b0Flags | (aad.length > 0 ? 0x40 : 0);
    nonce.copy(input, 1);
    input.writeUIntBE(payload.length, 1 + CCM_NONCE_LENGTH, Q);
    if (aad.length > 0) {
      input.writeUInt16BE(aad.length, BLOCK);
      aad.copy(input, BLOCK + 2);
    }
    payload.copy(input, BLOCK + aadBlocks);
    // Undo the chained IV: CBC computes E(B0 ^ chain ^ chain) = E(B0).
    for (let i = 0; i < BLOCK; i++) input[i] ^= this.chain[i]!;
    const out = this.cbc.update(input);
    const last = out.subarray(out.length - BLOCK);
    last.copy(this.chain);
    input.fill(0);
    return last;
  }

  /** E(Ctr_0) ‖ E(Ctr_1) ‖ ... enough for `length` bytes after the first block. */
  private keystream(nonce: Buffer, length: number): Buffer {
    const counters = scratch(BLOCK + roundUp(length));
    for (let at = 0, i = 0; at < counters.length; at += BLOCK, i++) {
      counters[at] = Q - 1;
      nonce.copy(counters, at + 1);
      counters.writeUIntBE(i, at + 1 + CCM_NONCE_LENGTH, Q);
    }
    return this.ecb.update(counters);
  }
}

/**
 * Zeroed room for `length` bytes of CBC or counter input: one buffer shared by every short
 * record (each call runs to its end synchronously; cbcMac wipes the payload it copied there),
 * an allocation of its own for a long one.
 */
function scratch(length: number): Buffer {
  if (length > SCRATCH.length) return Buffer.alloc(length);
  return SCRATCH.fill(0, 0, length).subarray(0, length);
}

const SCRATCH = Buffer.alloc(1024);

function checkSizes(nonce: Buffer, aad: Buffer, length: number): void {
  if (nonce.length !== CCM_NONCE_LENGTH) throw new RangeError(`CCM nonce of ${nonce.length} bytes`);
  if (aad.length > MAX_SHORT_AAD) throw new RangeError(`CCM additional data of ${aad.length} bytes`);
  if (length > MAX_PAYLOAD) throw new RangeError(`CCM payload of ${length} bytes`);
}
