import { describe, expect, it } from 'vitest';
import { deriveSoftware, encodePsk, isDerivableIdentity, kcvSoftware, md5Block } from '../../src/keys/derive.js';
import { MASTER_HEX, MASTER_KCV, VECTORS } from './vectors.js';

const master = Buffer.from(MASTER_HEX, 'hex');

describe('software derivation', () => {
  for (const v of VECTORS) {
    it(`matches the known answer: ${v.name}`, () => {
      expect(deriveSoftware(master, Buffer.from(v.serial, 'utf8')).toString('hex')).toBe(v.psk);
    });
  }

  it('hashes with MD5 into one block', () => {
    expect(md5Block(Buffer.from('abc')).toString('hex')).toBe('900150983cd24fb0d6963f7d28e17f72');
  });

  it('encodes raw and hex', () => {
    const d = Buffer.from(VECTORS[0]!.psk, 'hex');
    expect(encodePsk(d, 'raw').equals(d)).toBe(true);
    expect(encodePsk(d, 'hex').toString('ascii')).toBe(VECTORS[0]!.psk);
    expect(encodePsk(d, 'hex')).toHaveLength(32);
  });

  it('computes the KCV', () => {
    expect(kcvSoftware(master)).toBe(MASTER_KCV);
  });

  it('accepts identities of 1..128 bytes only', () => {
    expect(isDerivableIdentity(Buffer.alloc(0))).toBe(false);
    expect(isDerivableIdentity(Buffer.alloc(128, 0x41))).toBe(true);
    expect(isDerivableIdentity(Buffer.alloc(129, 0x41))).toBe(false);
  });
});
