import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { INITIAL_STATE, MESSAGE_SCRATCH, MESSAGE_SCRATCH_BYTES, Sha256, compress, digestBytes, finishHash } from '../../../src/dtls/sha256.js';

function sha256(data: Uint8Array): string {
  const state = Int32Array.from(INITIAL_STATE);
  finishHash(state, data, data.length, 0);
  const out = Buffer.alloc(32);
  digestBytes(state, out, 0);
  return out.toString('hex');
}

describe('SHA-256 (FIPS 180-4)', () => {
  it('gives the answers of the FIPS 180-2 appendix B examples', () => {
    expect(sha256(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
    expect(sha256(Buffer.alloc(1_000_000, 'a'))).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('agrees with node for every length across the one- and two-block paddings and beyond', () => {
    for (let length = 0; length <= 300; length++) {
      const data = randomBytes(length);
      expect(sha256(data), `length ${length}`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('hashes a message gathered in its own scratch space in place', () => {
    for (const length of [0, 1, 55, 56, 63, 64, 65, 119, MESSAGE_SCRATCH_BYTES]) {
      const data = randomBytes(length);
      MESSAGE_SCRATCH.set(data);
      const state = Int32Array.from(INITIAL_STATE);
      finishHash(state, MESSAGE_SCRATCH, length, 0);
      const out = Buffer.alloc(32);
      digestBytes(state, out, 0);
      expect(out.toString('hex'), `length ${length}`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('continues from a midstate: whole blocks compressed first, the rest finished with their count', () => {
    const prefix = randomBytes(128);
    const rest = randomBytes(40);
    const state = Int32Array.from(INITIAL_STATE);
    compress(state, prefix, 0);
    compress(state, prefix, 64);
    finishHash(state, rest, rest.length, prefix.length);
    const out = Buffer.alloc(32);
    digestBytes(state, out, 0);
    expect(out).toEqual(createHash('sha256').update(prefix).update(rest).digest());
  });

  it('reads the digest of a running hash at any point, fed in pieces of every size, and goes on', () => {
    const running = new Sha256();
    const reference = createHash('sha256');
    for (let piece = 0; piece <= 140; piece += 7) {
      const data = randomBytes(piece);
      running.update(data);
      reference.update(data);
      expect(running.digest(), `after a piece of ${piece}`).toEqual(reference.copy().digest());
    }
  });
});
