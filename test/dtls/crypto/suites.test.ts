/** Properties every suite must have, whatever its construction. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CIPHER_SUITES,
  DEFAULT_SUITE_PREFERENCE,
  suiteByName,
  type CipherSuite,
  type RecordProtection,
} from '../../../src/dtls/ciphers/index.js';

const VERSION = 0xfefd;
const TYPE = 23;

interface Variant {
  label: string;
  suite: CipherSuite;
  encryptThenMac: boolean;
}

const variants: Variant[] = [...CIPHER_SUITES.values()].flatMap((suite) =>
  suite.aead
    ? [{ label: suite.name, suite, encryptThenMac: false }]
    : [
        { label: `${suite.name} (encrypt-then-MAC)`, suite, encryptThenMac: true },
        { label: `${suite.name} (MAC-then-encrypt)`, suite, encryptThenMac: false },
      ],
);

function pair(variant: Variant): { sender: RecordProtection; receiver: RecordProtection } {
  const { suite, encryptThenMac } = variant;
  const keys = {
    macKey: randomBytes(suite.macKeyLength),
    encKey: randomBytes(suite.encKeyLength),
    fixedIv: randomBytes(suite.fixedIvLength),
  };
  // Separate objects, as the two ends of a connection would have.
  return {
    sender: suite.createProtection(keys, { encryptThenMac }),
    receiver: suite.createProtection(
      { macKey: Buffer.from(keys.macKey), encKey: Buffer.from(keys.encKey), fixedIv: Buffer.from(keys.fixedIv) },
      { encryptThenMac },
    ),
  };
}

describe.each(variants)('$label', (variant) => {
  const { sender, receiver } = pair(variant);

  it('round-trips plaintexts of many lengths within maxExpansion', () => {
    for (const length of [0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 100, 1024, 16384]) {
      const plaintext = randomBytes(length);
      const seq = length * 7 + 1;
      const fragment = sender.seal(TYPE, VERSION, 1, seq, plaintext);
      expect(fragment.length).toBeLessThanOrEqual(length + variant.suite.maxExpansion);
      expect(receiver.open(TYPE, VERSION, 1, seq, fragment)).toEqual(plaintext);
    }
  });

  it('handles the largest epoch and 48-bit sequence number', () => {
    const plaintext = Buffer.from('last record before the sequence number wraps');
    const fragment = sender.seal(TYPE, VERSION, 0xffff, 2 ** 48 - 1, plaintext);
    expect(receiver.open(TYPE, VERSION, 0xffff, 2 ** 48 - 1, fragment)).toEqual(plaintext);
    expect(receiver.open(TYPE, VERSION, 0xffff, 2 ** 48 - 2, fragment)).toBeUndefined();
  });

  it('does not leave the plaintext readable in the fragment', () => {
    const plaintext = Buffer.from('GET /sensors/temperature coap payload that must be hidden');
    const fragment = sender.seal(TYPE, VERSION, 1, 1, plaintext);
    expect(fragment.includes(plaintext.subarray(0, 16))).toBe(false);
  });

  it('rejects a record under a different epoch, seq, type or version', () => {
    const plaintext = Buffer.from('0123456789abcdef0123');
    const fragment = sender.seal(TYPE, VERSION, 3, 0x10203, plaintext);
    expect(receiver.open(TYPE, VERSION, 3, 0x10203, fragment)).toEqual(plaintext);
    expect(receiver.open(TYPE, VERSION, 4, 0x10203, fragment)).toBeUndefined();
    expect(receiver.open(TYPE, VERSION, 3, 0x10204, fragment)).toBeUndefined();
    expect(receiver.open(TYPE, VERSION, 3, 0x10203 + 2 ** 32, fragment)).toBeUndefined();
    expect(receiver.open(22, VERSION, 3, 0x10203, fragment)).toBeUndefined();
    expect(receiver.open(TYPE, 0xfeff, 3, 0x10203, fragment)).toBeUndefined();
  });

  it('rejects any flipped bit', () => {
    const fragment = sender.seal(TYPE, VERSION, 1, 9, randomBytes(40));
    for (let i = 0; i < fragment.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const damaged = Buffer.from(fragment);
        damaged[i]! ^= bit;
        expect(receiver.open(TYPE, VERSION, 1, 9, damaged), `byte ${i} bit ${bit}`).toBeUndefined();
      }
    }
  });

  it('rejects every truncation and an extension, without throwing', () => {
    const fragment = sender.seal(TYPE, VERSION, 1, 10, randomBytes(37));
    for (let length = 0; length < fragment.length; length++) {
      expect(receiver.open(TYPE, VERSION, 1, 10, fragment.subarray(0, length))).toBeUndefined();
      expect(receiver.open(TYPE, VERSION, 1, 10, fragment.subarray(fragment.length - length))).toBeUndefined();
    }
    expect(receiver.open(TYPE, VERSION, 1, 10, Buffer.concat([fragment, Buffer.alloc(1)]))).toBeUndefined();
    expect(receiver.open(TYPE, VERSION, 1, 10, Buffer.concat([fragment, Buffer.alloc(16)]))).toBeUndefined();
  });

  it('rejects a record sealed under other keys', () => {
    const other = pair(variant).sender;
    const fragment = other.seal(TYPE, VERSION, 1, 1, Buffer.from('hello'));
    expect(receiver.open(TYPE, VERSION, 1, 1, fragment)).toBeUndefined();
  });
});

describe('suite registry', () => {
  it('maps IANA values to suites of the same id', () => {
    expect([...CIPHER_SUITES.keys()].sort()).toEqual([0x00a8, 0x00ae, 0xc0a4, 0xc0a8, 0xccac].sort());
    for (const [id, suite] of CIPHER_SUITES) expect(suite.id).toBe(id);
    expect(CIPHER_SUITES.get(0xc0a8)?.name).toBe('TLS_PSK_WITH_AES_128_CCM_8');
    expect(CIPHER_SUITES.get(0xccac)?.keyExchange).toBe('ecdhe_psk');
  });

  it('prefers ChaCha20, CCM_8, CCM, GCM, CBC', () => {
    expect(DEFAULT_SUITE_PREFERENCE).toEqual([0xccac, 0xc0a8, 0xc0a4, 0x00a8, 0x00ae]);
    for (const id of DEFAULT_SUITE_PREFERENCE) expect(CIPHER_SUITES.has(id)).toBe(true);
  });

  it('finds suites by IANA name (any case) and by OpenSSL name', () => {
    for (const suite of CIPHER_SUITES.values()) {
      expect(suiteByName(suite.name)).toBe(suite);
      expect(suiteByName(suite.name.toLowerCase())).toBe(suite);
    }
    expect(suiteByName('TLS_PSK_WITH_AES_128_CCM')?.id).toBe(0xc0a4);
    expect(suiteByName('PSK-AES128-CCM8')?.id).toBe(0xc0a8);
    expect(suiteByName('ECDHE-PSK-CHACHA20-POLY1305')?.id).toBe(0xccac);
    expect(suiteByName('TLS_PSK_WITH_AES_256_CCM_8')).toBeUndefined();
    expect(suiteByName('')).toBeUndefined();
  });

  it('declares key lengths that match the RFCs', () => {
    const shape = (id: number) => {
      const s = CIPHER_SUITES.get(id)!;
      return [s.macKeyLength, s.encKeyLength, s.fixedIvLength, s.aead, s.maxExpansion];
    };
    expect(shape(0xc0a8)).toEqual([0, 16, 4, true, 16]);
    expect(shape(0xc0a4)).toEqual([0, 16, 4, true, 24]);
    expect(shape(0x00a8)).toEqual([0, 16, 4, true, 24]);
    expect(shape(0xccac)).toEqual([0, 32, 12, true, 16]);
    expect(shape(0x00ae)).toEqual([32, 16, 0, false, 64]);
  });
});
