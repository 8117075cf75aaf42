/**
 * Published AEAD vectors, first against node's primitive with the parameters our suites use,
 * then through the suites: keys and (epoch, seq) are chosen so that the record nonce equals the
 * vector's nonce, and the record is compared with a computation done here by hand.
 */
import { createCipheriv, type CipherCCMTypes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
  TLS_PSK_WITH_AES_128_CCM_8,
  TLS_PSK_WITH_AES_128_GCM_SHA256,
} from '../../../src/dtls/ciphers/index.js';
import { hex } from './hex.js';

const opts = { encryptThenMac: false };

function rawSeal(
  algorithm: string,
  key: Buffer,
  nonce: Buffer,
  aad: Buffer,
  plaintext: Buffer,
  tagLength: number,
): Buffer {
  const cipher = createCipheriv(algorithm as CipherCCMTypes, key, nonce, { authTagLength: tagLength });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([body, cipher.getAuthTag()]);
}

/** seq_num ‖ type ‖ version ‖ length, written out by hand rather than with the code under test. */
function additionalData(seqNum: string, type: number, version: number, length: number): Buffer {
  const tail = Buffer.alloc(5);
  tail[0] = type;
  tail.writeUInt16BE(version, 1);
  tail.writeUInt16BE(length, 3);
  return Buffer.concat([hex(seqNum), tail]);
}

describe('AES-128-CCM_8 (NIST SP 800-38C Appendix C, Example 3)', () => {
  const key = hex('404142434445464748494a4b4c4d4e4f');
  const nonce = hex('101112131415161718191a1b');
  const adata = hex('000102030405060708090a0b0c0d0e0f10111213');
  const payload = hex('202122232425262728292a2b2c2d2e2f3031323334353637');
  const ciphertext = hex('e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5 484392fbc1b09951');

  it('node aes-128-ccm with an 8-byte tag gives the example ciphertext', () => {
    expect(rawSeal('aes-128-ccm', key, nonce, adata, payload, 8)).toEqual(ciphertext);
  });

  it('a CCM_8 record uses fixed_iv ‖ epoch ‖ seq as nonce and sends the explicit part', () => {
    // fixed_iv 10111213, epoch 0x1415, seq 0x161718191a1b: nonce 101112131415161718191a1b.
    const keys = { macKey: Buffer.alloc(0), encKey: key, fixedIv: hex('10111213') };
    const sender = TLS_PSK_WITH_AES_128_CCM_8.createProtection(keys, opts);
    const receiver = TLS_PSK_WITH_AES_128_CCM_8.createProtection(keys, opts);
    const record = sender.seal(23, 0xfefd, 0x1415, 0x161718191a1b, payload);
    const aad = additionalData('1415161718191a1b', 23, 0xfefd, payload.length);
    expect(record).toEqual(
      Buffer.concat([hex('1415161718191a1b'), rawSeal('aes-128-ccm', key, nonce, aad, payload, 8)]),
    );
    expect(record.length).toBe(payload.length + TLS_PSK_WITH_AES_128_CCM_8.maxExpansion);
    expect(receiver.open(23, 0xfefd, 0x1415, 0x161718191a1b, record)).toEqual(payload);
  });
});

describe('AES-128-GCM (McGrew and Viega, GCM specification, Test Case 4)', () => {
  const key = hex('feffe9928665731c6d6a8f9467308308');
  const iv = hex('cafebabefacedbaddecaf888');
  const plaintext = hex(`d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                         1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39`);
  const aadVector = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
  const expected = hex(`42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
                        21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091
                        5bc94fbc3221a5db94fae95ae7121a47`);

  it('node aes-128-gcm gives the published ciphertext and tag', () => {
    expect(rawSeal('aes-128-gcm', key, iv, aadVector, plaintext, 16)).toEqual(expected);
  });

  it('a GCM record uses fixed_iv ‖ epoch ‖ seq as nonce (RFC 5288 section 3)', () => {
    // fixed_iv cafebabe, epoch 0xface, seq 0xdbaddecaf888.
    const keys = { macKey: Buffer.alloc(0), encKey: key, fixedIv: hex('cafebabe') };
    const protection = TLS_PSK_WITH_AES_128_GCM_SHA256.createProtection(keys, opts);
    const record = protection.seal(22, 0xfefd, 0xface, 0xdbaddecaf888, plaintext);
    const aad = additionalData('facedbaddecaf888', 22, 0xfefd, plaintext.length);
    expect(record).toEqual(
      Buffer.concat([hex('facedbaddecaf888'), rawSeal('aes-128-gcm', key, iv, aad, plaintext, 16)]),
    );
    expect(protection.open(22, 0xfefd, 0xface, 0xdbaddecaf888, record)).toEqual(plaintext);
  });
});

describe('ChaCha20-Poly1305 (RFC 8439 section 2.8.2, RFC 7905 nonce)', () => {
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('070000004041424344454647');
  const aadVector = hex('50515253c0c1c2c3c4c5c6c7');
  const plaintext = Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    'ascii',
  );
  const expected = hex(`
    d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
    3ff4def08e4b7a9de576d26586cec64b6116
    1ae10b594f09e26a7e902ecbd0600691`);

  it('node chacha20-poly1305 gives the RFC ciphertext and tag', () => {
    expect(rawSeal('chacha20-poly1305', key, nonce, aadVector, plaintext, 16)).toEqual(expected);
  });

  it('epoch 0, seq 0 leaves the fixed IV as the nonce and nothing explicit goes on the wire', () => {
    const keys = { macKey: Buffer.alloc(0), encKey: key, fixedIv: nonce };
    const record = TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256.createProtection(keys, opts).seal(
      23,
      0xfefd,
      0,
      0,
      plaintext,
    );
    const aad = additionalData('0000000000000000', 23, 0xfefd, plaintext.length);
    expect(record).toEqual(rawSeal('chacha20-poly1305', key, nonce, aad, plaintext, 16));
    // Same key stream as the RFC vector; only the tag differs, through the additional data.
    expect(record.subarray(0, plaintext.length)).toEqual(expected.subarray(0, plaintext.length));
  });

  it('XORs epoch ‖ seq into the last 8 bytes of the fixed IV (RFC 7905 section 2)', () => {
    const fixedIv = hex('a0a1a2a3 a4a5a6a7 a8a9aaab');
    const keys = { macKey: Buffer.alloc(0), encKey: key, fixedIv };
    const protection = TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256.createProtection(keys, opts);
    // epoch 0x0102, seq 0x030405060708: a4a5^0102 = a5a7, a6a7a8a9aaab^030405060708 = a5a3adafada3.
    const record = protection.seal(23, 0xfefd, 0x0102, 0x030405060708, plaintext);
    const aad = additionalData('0102030405060708', 23, 0xfefd, plaintext.length);
    const manualNonce = hex('a0a1a2a3 a5a7a5a3 adafada3');
    expect(record).toEqual(rawSeal('chacha20-poly1305', key, manualNonce, aad, plaintext, 16));
    expect(record.length).toBe(plaintext.length + 16);
    expect(protection.open(23, 0xfefd, 0x0102, 0x030405060708, record)).toEqual(plaintext);
  });
});
