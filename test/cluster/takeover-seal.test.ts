/**
 * The sealing of a takeover's state (src/cluster/takeover-seal.ts): X25519 against RFC 7748
 * section 6.1's vectors (the key both sides derive is HKDF-SHA256 of that shared secret),
 * and AES-256-GCM that refuses a changed byte, other additional data or another key.
 */
import { createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, seal, sealingKey, type Ephemeral } from '../../src/cluster/takeover-seal.js';

// RFC 7748 section 6.1.
const ALICE_PRIVATE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_PRIVATE = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
const BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

function fromPrivate(hex: string): Ephemeral {
  // PKCS#8 for X25519 (RFC 8410): a fixed prefix, then the 32-byte private key.
  const privateKey = createPrivateKey({ key: Buffer.from(`302e020100300506032b656e04220420${hex}`, 'hex'), format: 'der', type: 'pkcs8' });
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x!;
  return { privateKey, publicKey: Buffer.from(x, 'base64url') };
}

describe('takeover sealing', () => {
  const context = Buffer.from('takeover id and both public keys');
  const expected = Buffer.from(hkdfSync('sha256', Buffer.from(SHARED, 'hex'), context, Buffer.from('coap-psk takeover v1 aes-256-gcm'), 32));

  it('both sides derive HKDF(X25519 shared secret of RFC 7748 6.1)', () => {
    const alice = fromPrivate(ALICE_PRIVATE);
    const bob = fromPrivate(BOB_PRIVATE);
    expect(alice.publicKey.toString('hex')).toBe(ALICE_PUBLIC);
    expect(bob.publicKey.toString('hex')).toBe(BOB_PUBLIC);
    expect(sealingKey(alice, bob.publicKey, context)).toEqual(expected);
    expect(sealingKey(bob, alice.publicKey, context)).toEqual(expected);
  });

  it('refuses a public key of the wrong length or of low order', () => {
    const alice = fromPrivate(ALICE_PRIVATE);
    expect(sealingKey(alice, Buffer.alloc(31), context)).toBeUndefined();
    expect(sealingKey(alice, Buffer.alloc(32), context)).toBeUndefined(); // the zero point: all-zero shared secret
  });

  it('opens what it sealed, and nothing changed', () => {
    const key = Buffer.from(expected);
    const ad = Buffer.from('ad');
    const sealed = seal(key, Buffer.from('sessions'), ad);
    expect(open(key, sealed, ad)?.toString()).toBe('sessions');
    const flipped = Buffer.from(sealed);
    flipped[14]! ^= 1;
    expect(open(key, flipped, ad)).toBeUndefined();
    expect(open(key, sealed, Buffer.from('other'))).toBeUndefined();
    expect(open(Buffer.alloc(32), sealed, ad)).toBeUndefined();
    expect(open(key, sealed.subarray(0, 27), ad)).toBeUndefined();
  });
});
