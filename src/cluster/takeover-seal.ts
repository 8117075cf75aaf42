/**
 * The key that seals a graceful restart's session state (docs/graceful-restart.md): an
 * ephemeral X25519 agreement (RFC 7748) between the old and the new process over their local
 * channel, HKDF-SHA256 (RFC 5869) into an AES-256-GCM key. Neither process ever sends or writes
 * the key: each computes it from its own private key and the other's public key, and both
 * private keys live only in memory for one takeover.
 *
 * Why not a key wrapped by the HSM: it would need a dedicated token object and work only with
 * PKCS#11 keys (not the software mode); the agreement needs nothing. It is unauthenticated:
 * who may take over is decided by who can reach the channel (a Unix socket in a directory only
 * the service user can enter, takeover.ts), and such a process could read the old one's memory
 * anyway. What the sealing guarantees is that session keys never cross the channel in the clear.
 */
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const PUBLIC_KEY_LENGTH = 32;
const INFO = Buffer.from('coap-psk takeover v1 aes-256-gcm', 'utf8');

export interface Ephemeral {
  readonly publicKey: Buffer;
  readonly privateKey: KeyObject;
}

export function ephemeralKey(): Ephemeral {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const x = publicKey.export({ format: 'jwk' }).x;
  if (!x) throw new Error('x25519: no public key');
  return { publicKey: Buffer.from(x, 'base64url'), privateKey };
}

/**
 * The AES-256 key both sides derive; `context` (takeover id and both public keys) is the HKDF
 * salt, so that each takeover has its own key. Undefined for a public key that is not one.
 */
export function sealingKey(own: Ephemeral, peerPublic: Buffer, context: Buffer): Buffer | undefined {
  if (peerPublic.length !== PUBLIC_KEY_LENGTH) return undefined;
  try {
    const peer = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerPublic.toString('base64url') }, format: 'jwk' });
    const shared = diffieHellman({ privateKey: own.privateKey, publicKey: peer });
    const key = Buffer.from(hkdfSync('sha256', shared, context, INFO, 32));
    shared.fill(0);
    return key;
  } catch {
    return undefined; // a low-order point: diffieHellman refuses an all-zero shared secret
  }
}

/** nonce ‖ ciphertext ‖ tag, under a random 96-bit nonce (one message per key). */
export function seal(key: Buffer, plaintext: Buffer, additionalData: Buffer): Buffer {
  const nonce = randomBytes(NONCE_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(additionalData);
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The plaintext, or undefined when `sealed` does not authenticate under `key` and `additionalData`. */
export function open(key: Buffer, sealed: Buffer, additionalData: Buffer): Buffer | undefined {
  if (sealed.length < NONCE_LENGTH + TAG_LENGTH) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_LENGTH), { authTagLength: TAG_LENGTH });
    decipher.setAAD(additionalData);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_LENGTH, sealed.length - TAG_LENGTH)), decipher.final()]);
  } catch {
    return undefined;
  }
}
