/**
 * Ephemeral ECDH for ECDHE_PSK (RFC 5489) on the named groups x25519 and secp256r1, by node:crypto.
 * Public keys travel in TLS wire form (RFC 8422 section 5.4): the 32-byte u-coordinate for X25519,
 * the 65-byte uncompressed point (0x04 ‖ X ‖ Y) for P-256.
 */
import {
  createECDH,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { NamedGroup } from './constants.js';

export type EcdheGroup = (typeof NamedGroup)[keyof typeof NamedGroup];

export interface Ephemeral {
  readonly group: EcdheGroup;
  /** Our public key in TLS wire form, for ServerKeyExchange / ClientKeyExchange. */
  readonly publicKey: Buffer;
  /** The shared secret Z, or undefined for a malformed or invalid peer key (never throws). */
  computeSecret(peerPublic: Buffer): Buffer | undefined;
}

/** Groups in our order of preference: X25519 first (cheaper, no point validation pitfalls). */
export const SUPPORTED_GROUPS: readonly EcdheGroup[] = [NamedGroup.x25519, NamedGroup.secp256r1];

export function isSupportedGroup(group: number): group is EcdheGroup {
  return group === NamedGroup.x25519 || group === NamedGroup.secp256r1;
}

const X25519_LENGTH = 32;
const P256_POINT_LENGTH = 65;
const UNCOMPRESSED_POINT = 0x04;
// PKCS#8 wrapping of a raw X25519 private key (RFC 8410); only the test/replay path imports keys.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A fresh key pair for one handshake. */
export function generateEphemeral(group: EcdheGroup): Ephemeral {
  if (group === NamedGroup.x25519) {
    return x25519Ephemeral(generateKeyPairSync('x25519').privateKey);
  }
  if (group === NamedGroup.secp256r1) {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    return p256Ephemeral(ecdh);
  }
  throw new RangeError(`unsupported named group ${group as number}`);
}

/**
 * The same object around a given private key (32-byte X25519 scalar or 32-byte P-256 scalar).
 * For known-answer tests and for a load generator that replays a fixed handshake; servers use
 * generateEphemeral.
 */
export function ephemeralFromPrivateKey(group: EcdheGroup, privateKey: Buffer): Ephemeral {
  if (group === NamedGroup.x25519) {
    const der = Buffer.concat([X25519_PKCS8_PREFIX, privateKey]);
    return x25519Ephemeral(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  }
  if (group === NamedGroup.secp256r1) {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(privateKey);
    return p256Ephemeral(ecdh);
  }
  throw new RangeError(`unsupported named group ${group as number}`);
}

// JWK is the fast way in and out of OpenSSL 3 here: DER goes through the decoder/encoder
// framework and costs several times more per handshake.
function x25519Ephemeral(privateKey: KeyObject): Ephemeral {
  const jwk = privateKey.export({ format: 'jwk' });
  const publicKey = Buffer.from(jwk.x as string, 'base64url');
  return {
    group: NamedGroup.x25519,
    publicKey,
    computeSecret(peerPublic: Buffer): Buffer | undefined {
      if (peerPublic.length !== X25519_LENGTH) return undefined;
      try {
        const peer = createPublicKey({
          key: { kty: 'OKP', crv: 'X25519', x: peerPublic.toString('base64url') },
          format: 'jwk',
        });
        const z = diffieHellman({ privateKey, publicKey: peer });
        // OpenSSL already refuses a low-order peer point; the check stays in case that changes.
        return isAllZero(z) ? undefined : z;
      } catch {
        return undefined;
      }
    },
  };
}

function p256Ephemeral(ecdh: ReturnType<typeof createECDH>): Ephemeral {
  return {
    group: NamedGroup.secp256r1,
    publicKey: ecdh.getPublicKey(),
    computeSecret(peerPublic: Buffer): Buffer | undefined {
      // RFC 8422 5.4 allows only the uncompressed form; the length check also rules out infinity.
      if (peerPublic.length !== P256_POINT_LENGTH || peerPublic[0] !== UNCOMPRESSED_POINT) return undefined;
      try {
        return ecdh.computeSecret(peerPublic); // OpenSSL checks that the point is on the curve
      } catch {
        return undefined;
      }
    },
  };
}

function isAllZero(bytes: Buffer): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}
