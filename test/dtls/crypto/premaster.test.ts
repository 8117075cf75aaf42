import { describe, expect, it } from 'vitest';
import { ecdhePskPremaster, pskPremaster } from '../../../src/dtls/premaster.js';
import { hex } from './hex.js';

describe('PSK premaster secrets', () => {
  it('lays out plain PSK as uint16 N, N zeros, uint16 N, psk (RFC 4279 section 2)', () => {
    expect(pskPremaster(hex('0a0b0c'))).toEqual(hex('0003 000000 0003 0a0b0c'));
    const psk = Buffer.alloc(16, 0xab);
    const premaster = pskPremaster(psk);
    expect(premaster.length).toBe(36);
    expect(premaster.readUInt16BE(0)).toBe(16);
    expect(premaster.subarray(2, 18)).toEqual(Buffer.alloc(16));
    expect(premaster.readUInt16BE(18)).toBe(16);
    expect(premaster.subarray(20)).toEqual(psk);
  });

  it('lays out ECDHE_PSK as uint16 len(Z), Z, uint16 len(psk), psk (RFC 5489 section 2)', () => {
    const z = Buffer.alloc(32, 0x11);
    const psk = hex('0102030405');
    expect(ecdhePskPremaster(z, psk)).toEqual(Buffer.concat([hex('0020'), z, hex('0005'), psk]));
  });
});
