import { describe, expect, it } from 'vitest';
import { ephemeralFromPrivateKey, generateEphemeral, isSupportedGroup } from '../../../src/dtls/ecdhe.js';
import { NamedGroup } from '../../../src/dtls/constants.js';
import { hex } from './hex.js';

describe('X25519 (RFC 7748)', () => {
  // RFC 7748 section 6.1.
  const alicePrivate = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const alicePublic = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  const bobPrivate = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');

  it('reproduces the section 6.1 key agreement through computeSecret', () => {
    const alice = ephemeralFromPrivateKey(NamedGroup.x25519, alicePrivate);
    const bob = ephemeralFromPrivateKey(NamedGroup.x25519, bobPrivate);
    expect(alice.publicKey).toEqual(alicePublic);
    expect(bob.publicKey).toEqual(bobPublic);
    expect(alice.computeSecret(bobPublic)).toEqual(shared);
    expect(bob.computeSecret(alicePublic)).toEqual(shared);
  });

  it('agrees between two fresh ephemerals', () => {
    const a = generateEphemeral(NamedGroup.x25519);
    const b = generateEphemeral(NamedGroup.x25519);
    expect(a.group).toBe(NamedGroup.x25519);
    expect(a.publicKey.length).toBe(32);
    const z = a.computeSecret(b.publicKey);
    expect(z?.length).toBe(32);
    expect(b.computeSecret(a.publicKey)).toEqual(z);
  });

  it('returns undefined for wrong lengths and for low-order points (all-zero result)', () => {
    const a = generateEphemeral(NamedGroup.x25519);
    expect(a.computeSecret(Buffer.alloc(0))).toBeUndefined();
    expect(a.computeSecret(bobPublic.subarray(0, 31))).toBeUndefined();
    expect(a.computeSecret(Buffer.concat([bobPublic, hex('00')]))).toBeUndefined();
    expect(a.computeSecret(Buffer.alloc(65, 4))).toBeUndefined();
    // u = 0 and u = 1 are points of small order: the shared secret would be all zeros.
    expect(a.computeSecret(Buffer.alloc(32))).toBeUndefined();
    expect(a.computeSecret(hex('01'.padEnd(64, '0')))).toBeUndefined();
  });
});

describe('secp256r1', () => {
  // RFC 5903 section 8.1 (256-bit random ECP group); TLS sends the points as 04 ‖ x ‖ y.
  const i = hex('c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433');
  const gi = hex(`04 dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180
                     5271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3`);
  const r = hex('c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53');
  const gr = hex(`04 d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf63
                     56fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab`);
  const girx = hex('d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de');

  it('reproduces the RFC 5903 section 8.1 agreement (Z is the x-coordinate)', () => {
    const initiator = ephemeralFromPrivateKey(NamedGroup.secp256r1, i);
    const responder = ephemeralFromPrivateKey(NamedGroup.secp256r1, r);
    expect(initiator.publicKey).toEqual(gi);
    expect(responder.publicKey).toEqual(gr);
    expect(initiator.computeSecret(gr)).toEqual(girx);
    expect(responder.computeSecret(gi)).toEqual(girx);
  });

  it('agrees between two fresh ephemerals, with 65-byte uncompressed public keys', () => {
    const a = generateEphemeral(NamedGroup.secp256r1);
    const b = generateEphemeral(NamedGroup.secp256r1);
    expect(a.publicKey.length).toBe(65);
    expect(a.publicKey[0]).toBe(4);
    const z = a.computeSecret(b.publicKey);
    expect(z?.length).toBe(32);
    expect(b.computeSecret(a.publicKey)).toEqual(z);
  });

  it('rejects invalid points without throwing', () => {
    const a = generateEphemeral(NamedGroup.secp256r1);
    const offCurve = Buffer.from(gr);
    offCurve[64]! ^= 1;
    const compressed = Buffer.concat([hex('03'), gr.subarray(1, 33)]); // valid point, but not allowed
    const wrongPrefix = Buffer.from(gr);
    wrongPrefix[0] = 0x06;
    for (const bad of [
      Buffer.alloc(0),
      hex('00'), // point at infinity
      offCurve,
      compressed,
      wrongPrefix,
      Buffer.alloc(65), // 04-less zeros
      Buffer.concat([hex('04'), Buffer.alloc(64)]), // (0, 0) is not on the curve
      gr.subarray(0, 64),
      Buffer.concat([gr, hex('00')]),
      hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'), // an X25519 key
    ]) {
      expect(a.computeSecret(bad)).toBeUndefined();
    }
  });
});

describe('groups', () => {
  it('knows x25519 (29) and secp256r1 (23) only', () => {
    expect(isSupportedGroup(29)).toBe(true);
    expect(isSupportedGroup(23)).toBe(true);
    expect(isSupportedGroup(24)).toBe(false);
    expect(() => generateEphemeral(24 as never)).toThrow(RangeError);
  });
});
