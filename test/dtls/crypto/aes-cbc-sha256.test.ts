/**
 * TLS_PSK_WITH_AES_128_CBC_SHA256 in both MAC orders. Records are also built and checked here
 * by hand with node:crypto (RFC 5246 6.2.3.2 for MAC-then-encrypt, RFC 7366 section 3 for
 * encrypt-then-MAC), so the tests do not trust the code under test to describe its own format.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TLS_PSK_WITH_AES_128_CBC_SHA256 as suite } from '../../../src/dtls/ciphers/index.js';
import { hex } from './hex.js';

const keys = {
  macKey: hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'),
  encKey: hex('606162636465666768696a6b6c6d6e6f'),
  fixedIv: Buffer.alloc(0),
};
const EPOCH = 1;
const SEQ = 0x0000_0102_0304;
const TYPE = 23;
const VERSION = 0xfefd;
// seq_num 0001 000001020304, type 17, version fefd; the length is appended per record.
const SEQ_TYPE_VERSION = hex('0001000001020304 17 fefd');

function macHeader(length: number): Buffer {
  const l = Buffer.alloc(2);
  l.writeUInt16BE(length);
  return Buffer.concat([SEQ_TYPE_VERSION, l]);
}

function hmac(...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', keys.macKey);
  for (const part of parts) h.update(part);
  return h.digest();
}

function cbc(direction: 'encrypt' | 'decrypt', iv: Buffer, data: Buffer): Buffer {
  const c =
    direction === 'encrypt'
      ? createCipheriv('aes-128-cbc', keys.encKey, iv)
      : createDecipheriv('aes-128-cbc', keys.encKey, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/** `padding` is the whole padding including the padding_length byte. */
function macThenEncrypt(content: Buffer, padding: Buffer, mac = hmac(macHeader(content.length), content)): Buffer {
  const iv = randomBytes(16);
  return Buffer.concat([iv, cbc('encrypt', iv, Buffer.concat([content, mac, padding]))]);
}

function encryptThenMac(content: Buffer, padding: Buffer): Buffer {
  const iv = randomBytes(16);
  const body = Buffer.concat([iv, cbc('encrypt', iv, Buffer.concat([content, padding]))]);
  return Buffer.concat([body, hmac(macHeader(body.length), body)]);
}

function padding(length: number, value = length - 1): Buffer {
  return Buffer.alloc(length, value);
}

describe('RFC 4231 HMAC-SHA256 sanity (test case 2)', () => {
  it('node HMAC-SHA256 gives the published value', () => {
    const mac = createHmac('sha256', 'Jefe').update('what do ya want for nothing?').digest('hex');
    expect(mac).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
});

describe('MAC-then-encrypt', () => {
  const protection = suite.createProtection(keys, { encryptThenMac: false });
  const content = Buffer.from('coap payload, 29 bytes long!!');

  it('seals IV ‖ E(content ‖ HMAC(seq_num ‖ type ‖ version ‖ length ‖ content) ‖ padding)', () => {
    const fragment = protection.seal(TYPE, VERSION, EPOCH, SEQ, content);
    // 29 + 32 = 61 bytes, 3 bytes of padding (value 2) make 64.
    expect(fragment.length).toBe(16 + 64);
    const plain = cbc('decrypt', fragment.subarray(0, 16), fragment.subarray(16));
    expect(plain.subarray(0, 29)).toEqual(content);
    expect(plain.subarray(29, 61)).toEqual(hmac(macHeader(29), content));
    expect(plain.subarray(61)).toEqual(hex('020202'));
  });

  it('uses a fresh random IV per record', () => {
    const a = protection.seal(TYPE, VERSION, EPOCH, SEQ, content);
    const b = protection.seal(TYPE, VERSION, EPOCH, SEQ, content);
    expect(a.subarray(0, 16)).not.toEqual(b.subarray(0, 16));
  });

  it('opens records built by hand, with minimal and with longer padding', () => {
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, macThenEncrypt(content, padding(3)))).toEqual(content);
    // RFC 5246 allows up to 255 bytes of padding to hide the length.
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, macThenEncrypt(content, padding(19)))).toEqual(content);
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, macThenEncrypt(content, padding(243)))).toEqual(content);
    const empty = Buffer.alloc(0);
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, macThenEncrypt(empty, padding(16)))).toEqual(empty);
  });

  it('rejects bad padding even under a valid MAC', () => {
    // Each record carries the MAC of `content`; only the padding is wrong.
    const wrongByte = Buffer.from(padding(19));
    wrongByte[5] = 0x11;
    for (const bad of [
      hex('020102'), // a padding byte that differs from padding_length
      hex('010202'), // the same, at the first padding byte
      wrongByte,
      hex('030303'), // claims 4 bytes of padding, has 3: eats into the MAC
    ]) {
      expect(protection.open(TYPE, VERSION, EPOCH, SEQ, macThenEncrypt(content, bad))).toBeUndefined();
    }
    // padding_length larger than the whole record.
    const tooLong = macThenEncrypt(Buffer.alloc(0), hex('ff'.repeat(16)));
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, tooLong)).toBeUndefined();
  });

  it('rejects a wrong MAC under good padding', () => {
    const mac = hmac(macHeader(content.length), content);
    mac[31]! ^= 1;
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, macThenEncrypt(content, padding(3), mac))).toBeUndefined();
    // A MAC over another length field.
    const otherLength = hmac(macHeader(content.length + 1), content);
    expect(
      protection.open(TYPE, VERSION, EPOCH, SEQ, macThenEncrypt(content, padding(3), otherLength)),
    ).toBeUndefined();
  });

  it('rejects a flipped bit in the IV and in every ciphertext block', () => {
    const fragment = protection.seal(TYPE, VERSION, EPOCH, SEQ, randomBytes(70));
    for (let offset = 0; offset < fragment.length; offset += 16) {
      for (const at of [offset, offset + 7, offset + 15]) {
        const damaged = Buffer.from(fragment);
        damaged[at]! ^= 0x40;
        expect(protection.open(TYPE, VERSION, EPOCH, SEQ, damaged), `byte ${at}`).toBeUndefined();
      }
    }
  });

  it('rejects fragments that are not whole blocks or too short for a MAC, without throwing', () => {
    const fragment = protection.seal(TYPE, VERSION, EPOCH, SEQ, content);
    for (const length of [0, 1, 15, 16, 17, 32, 47, 48, 63, 79]) {
      expect(protection.open(TYPE, VERSION, EPOCH, SEQ, fragment.subarray(0, length))).toBeUndefined();
    }
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, Buffer.alloc(64))).toBeUndefined();
  });
});

describe('encrypt-then-MAC (RFC 7366)', () => {
  const protection = suite.createProtection(keys, { encryptThenMac: true });
  const content = Buffer.from('coap payload, 29 bytes long!!');

  it('seals IV ‖ E(content ‖ padding) ‖ HMAC(seq_num ‖ type ‖ version ‖ len(IV ‖ C) ‖ IV ‖ C)', () => {
    const fragment = protection.seal(TYPE, VERSION, EPOCH, SEQ, content);
    expect(fragment.length).toBe(16 + 32 + 32); // 29 + 3 bytes of padding, then the MAC
    const body = fragment.subarray(0, 48);
    expect(fragment.subarray(48)).toEqual(hmac(macHeader(48), body));
    const plain = cbc('decrypt', body.subarray(0, 16), body.subarray(16));
    expect(plain).toEqual(Buffer.concat([content, hex('020202')]));
  });

  it('opens records built by hand, with minimal and with longer padding', () => {
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, encryptThenMac(content, padding(3)))).toEqual(content);
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, encryptThenMac(content, padding(35)))).toEqual(content);
    const empty = Buffer.alloc(0);
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, encryptThenMac(empty, padding(16)))).toEqual(empty);
  });

  it('rejects bad padding even under a valid MAC', () => {
    for (const bad of [hex('020102'), hex('010202'), hex('ff'.repeat(16)).subarray(0, 3)]) {
      expect(protection.open(TYPE, VERSION, EPOCH, SEQ, encryptThenMac(content, bad))).toBeUndefined();
    }
    // padding_length 0x30 in a 32-byte plaintext: longer than what was encrypted.
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, encryptThenMac(content, hex('303030')))).toBeUndefined();
  });

  it('rejects a flipped bit in the IV, the ciphertext and the MAC', () => {
    const fragment = protection.seal(TYPE, VERSION, EPOCH, SEQ, randomBytes(40));
    const parts = { iv: [0, 15], ciphertext: [16, 30, fragment.length - 33], mac: [fragment.length - 32, fragment.length - 1] };
    for (const [part, offsets] of Object.entries(parts)) {
      for (const at of offsets) {
        const damaged = Buffer.from(fragment);
        damaged[at]! ^= 0x01;
        expect(protection.open(TYPE, VERSION, EPOCH, SEQ, damaged), `${part} byte ${at}`).toBeUndefined();
      }
    }
  });

  it('does not accept the other MAC order', () => {
    const mte = suite.createProtection(keys, { encryptThenMac: false });
    const etm = protection.seal(TYPE, VERSION, EPOCH, SEQ, content);
    expect(mte.open(TYPE, VERSION, EPOCH, SEQ, etm)).toBeUndefined();
    expect(protection.open(TYPE, VERSION, EPOCH, SEQ, mte.seal(TYPE, VERSION, EPOCH, SEQ, content))).toBeUndefined();
  });

  it('rejects short and misaligned fragments without throwing', () => {
    const fragment = protection.seal(TYPE, VERSION, EPOCH, SEQ, content);
    for (const length of [0, 1, 16, 32, 48, 63, 64, 79]) {
      expect(protection.open(TYPE, VERSION, EPOCH, SEQ, fragment.subarray(0, length))).toBeUndefined();
    }
  });
});
