import { createCipheriv, randomBytes, type CipherCCMTypes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AesCcm } from '../../../src/dtls/ciphers/ccm.js';
import { hex } from './hex.js';

function nodeSeal(key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer, tagLength: number): Buffer {
  // node's CCM needs the plaintext length declared even without AAD, and an empty input with a
  // real backing store (randomBytes(0) has none: OpenSSL then sees NULL and never sets the tag).
  const empty = Buffer.alloc(1).subarray(0, 0);
  const c = createCipheriv('aes-128-ccm' as CipherCCMTypes, key, nonce, { authTagLength: tagLength });
  c.setAAD(aad.length > 0 ? aad : empty, { plaintextLength: plaintext.length });
  const body = Buffer.concat([c.update(plaintext.length > 0 ? plaintext : empty), c.final()]);
  return Buffer.concat([body, c.getAuthTag()]);
}

function seal(ccm: AesCcm, nonce: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  const out = Buffer.alloc(plaintext.length + ccm.tagLength);
  ccm.seal(nonce, aad, plaintext, out, 0);
  return out;
}

describe('AesCcm (CBC-MAC and CTR on long-lived AES objects)', () => {
  it('gives NIST SP 800-38C Appendix C Example 3 (12-byte nonce, 8-byte tag)', () => {
    const ccm = new AesCcm(hex('404142434445464748494a4b4c4d4e4f'), 8);
    const nonce = hex('101112131415161718191a1b');
    const aad = hex('000102030405060708090a0b0c0d0e0f10111213');
    const payload = hex('202122232425262728292a2b2c2d2e2f3031323334353637');
    const expected = hex('e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5 484392fbc1b09951');
    expect(seal(ccm, nonce, aad, payload)).toEqual(expected);
    expect(ccm.open(nonce, aad, expected.subarray(0, 24), expected.subarray(24))).toEqual(payload);
  });

  it('agrees with node aes-128-ccm on every length, call after call on the same object', () => {
    for (const tagLength of [8, 16]) {
      const key = randomBytes(16);
      const ours = new AesCcm(key, tagLength);
      for (let length = 0; length <= 70; length++) {
        for (const aadLength of [0, 13, 14, 30]) {
          const nonce = randomBytes(12);
          const aad = randomBytes(aadLength);
          const plaintext = randomBytes(length);
          const sealed = seal(ours, nonce, aad, plaintext);
          expect(sealed, `tag ${tagLength} length ${length} aad ${aadLength}`).toEqual(nodeSeal(key, nonce, aad, plaintext, tagLength));
          expect(ours.open(nonce, aad, sealed.subarray(0, length), sealed.subarray(length))).toEqual(plaintext);
        }
      }
    }
  });

  it('refuses a record whose ciphertext, tag, nonce or additional data was changed', () => {
    const ccm = new AesCcm(randomBytes(16), 8);
    const nonce = randomBytes(12);
    const aad = randomBytes(13);
    const plaintext = randomBytes(40);
    const sealed = seal(ccm, nonce, aad, plaintext);
    const body = () => Buffer.from(sealed.subarray(0, 40));
    const tag = () => Buffer.from(sealed.subarray(40));
    const flip = (b: Buffer, i: number) => ((b[i] ^= 1), b);
    expect(ccm.open(nonce, aad, flip(body(), 7), tag())).toBeUndefined();
    expect(ccm.open(nonce, aad, body(), flip(tag(), 0))).toBeUndefined();
    expect(ccm.open(flip(Buffer.from(nonce), 11), aad, body(), tag())).toBeUndefined();
    expect(ccm.open(nonce, flip(Buffer.from(aad), 12), body(), tag())).toBeUndefined();
    expect(ccm.open(nonce, aad, body(), tag().subarray(0, 7))).toBeUndefined();
    // A failed open leaves the object working.
    expect(ccm.open(nonce, aad, body(), tag())).toEqual(plaintext);
  });

  it('rejects what it does not implement', () => {
    expect(() => new AesCcm(randomBytes(16), 5)).toThrow(RangeError);
    expect(() => seal(new AesCcm(randomBytes(16), 8), randomBytes(13), Buffer.alloc(0), Buffer.alloc(1))).toThrow(RangeError);
  });
});
