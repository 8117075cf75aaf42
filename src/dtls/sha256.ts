/**
 * SHA-256 (FIPS 180-4 section 6.2) in JavaScript, for the handshake's HMACs (hmac.ts) and its
 * transcript (transcript.ts).
 *
 * Why not node's crypto: each of those hashes is over a few dozen bytes, and node's hash() is a
 * native call and a new Buffer per call (~0.6-0.9 µs for two blocks here), a Hash object a
 * native object per update() and copy(). One compression here is ~0.3 µs with nothing
 * allocated. SHA-256 has no secret-dependent branch or table lookup, only 32-bit additions,
 * rotations and logic: it runs in constant time in JavaScript too.
 *
 * Checked against FIPS 180-4's examples and node's own SHA-256 over every length across the block
 * boundaries (test/dtls/crypto/sha256.test.ts).
 */

export const BLOCK_BYTES = 64;
export const DIGEST_BYTES = 32;

/** FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** FIPS 180-4 5.3.3: the initial hash value. */
export const INITIAL_STATE: Readonly<Int32Array> = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The message schedule, shared: compress() runs to its end synchronously, and each thread has its own module. */
const W = new Int32Array(64);

/** One compression: `state` absorbs the 64 bytes of `block` at `offset` (FIPS 180-4 6.2.2). */
export function compress(state: Int32Array, block: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++) {
    const j = offset + 4 * i;
    W[i] = (block[j]! << 24) | (block[j + 1]! << 16) | (block[j + 2]! << 8) | block[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15]!;
    const y = W[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!;
  let e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/**
 * The final block or two: the bytes after the last whole block, the 0x80 byte, zeros and the
 * length in bits (FIPS 180-4 5.1.1). Shared like W; wiped by wipeScratch().
 */
const FINAL = new Uint8Array(2 * BLOCK_BYTES);

/** The scratch space a message may be gathered in before finishHash(): no copy is made of it then. */
export const MESSAGE_SCRATCH: Uint8Array = FINAL;
export const MESSAGE_SCRATCH_BYTES = FINAL.length;

/**
 * Hashes the first `length` bytes of `data` to the end, into `state`, which has already
 * absorbed `before` bytes (a multiple of 64: the initial value, or a midstate). `state` then
 * holds the digest (digestBytes() writes it out). `data` may be MESSAGE_SCRATCH itself.
 */
export function finishHash(state: Int32Array, data: Uint8Array, length: number, before: number): void {
  let at = 0;
  for (; at + BLOCK_BYTES <= length; at += BLOCK_BYTES) compress(state, data, at);
  const tail = length - at;
  for (let i = 0; i < tail; i++) FINAL[i] = data[at + i]!; // forwards: safe when data is FINAL
  FINAL[tail] = 0x80;
  const blocks = tail + 9 > BLOCK_BYTES ? 2 : 1;
  const end = blocks * BLOCK_BYTES;
  FINAL.fill(0, tail + 1, end - 8);
  // The length in bits, big-endian in 8 bytes; ours are far below 2^53.
  const bits = (before + length) * 8;
  writeWord(FINAL, end - 8, Math.floor(bits / 0x1_0000_0000));
  writeWord(FINAL, end - 4, bits >>> 0);
  for (let b = 0; b < end; b += BLOCK_BYTES) compress(state, FINAL, b);
}

/** The 32 bytes of a digest held in `state`, big-endian, into `out` at `offset`. */
export function digestBytes(state: Int32Array, out: Uint8Array, offset: number): void {
  for (let i = 0; i < 8; i++) writeWord(out, offset + 4 * i, state[i]!);
}

/** Erases the shared message schedule and final blocks (what the last hash left there). */
export function wipeScratch(): void {
  W.fill(0);
  FINAL.fill(0);
}

/** The state a digest is finished in when its source must go on (Sha256.digest()). */
const RUNNING = new Int32Array(8);

/**
 * A running SHA-256 whose digest can be read at any point without ending it: what a handshake
 * transcript needs (transcript.ts), where node's Hash needs a copy() (a native object) per read.
 */
export class Sha256 {
  private readonly state = Int32Array.from(INITIAL_STATE);
  private readonly block = new Uint8Array(BLOCK_BYTES);
  private filled = 0;
  /** Bytes absorbed in whole blocks so far. */
  private compressed = 0;

  update(data: Uint8Array): this {
    let at = 0;
    while (at < data.length) {
      if (this.filled === 0 && data.length - at >= BLOCK_BYTES) {
        compress(this.state, data, at);
        at += BLOCK_BYTES;
        this.compressed += BLOCK_BYTES;
        continue;
      }
      const n = Math.min(BLOCK_BYTES - this.filled, data.length - at);
      for (let i = 0; i < n; i++) this.block[this.filled + i] = data[at + i]!;
      this.filled += n;
      at += n;
      if (this.filled === BLOCK_BYTES) {
        compress(this.state, this.block, 0);
        this.filled = 0;
        this.compressed += BLOCK_BYTES;
      }
    }
    return this;
  }

  /** The digest of everything so far; the hash goes on. */
  digest(): Buffer {
    RUNNING.set(this.state);
    finishHash(RUNNING, this.block, this.filled, this.compressed);
    const out = Buffer.allocUnsafe(DIGEST_BYTES);
    digestBytes(RUNNING, out, 0);
    return out;
  }
}

function writeWord(out: Uint8Array, at: number, word: number): void {
  out[at] = word >>> 24;
  out[at + 1] = word >>> 16;
  out[at + 2] = word >>> 8;
  out[at + 3] = word;
}
