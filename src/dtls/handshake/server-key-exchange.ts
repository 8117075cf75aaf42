/**
 * ServerKeyExchange for the PSK key exchanges: PSK (RFC 4279 2) and ECDHE_PSK (RFC 5489 2,
 * with the ServerECDHParams of RFC 8422 5.4). Neither is signed.
 */

import type { KeyExchange } from '../ciphers/types.js';
import { WireReader, decode, malformed, u16, u8, vector } from '../wire.js';

/** ECCurveType.named_curve (RFC 8422 5.4); the only curve type RFC 8422 still allows. */
export const EC_CURVE_TYPE_NAMED_CURVE = 3;
/** psk_identity_hint and psk_identity are both <0..2^16-1> (RFC 4279). */
export const MAX_PSK_IDENTITY_LENGTH = 0xffff;
/** ECPoint point<1..2^8-1> (RFC 8422 5.4). */
export const MAX_EC_POINT_LENGTH = 0xff;

export interface ServerKeyExchangePsk {
  identityHint: Buffer;
}

export interface ServerKeyExchangeEcdhePsk {
  identityHint: Buffer;
  namedGroup: number;
  publicKey: Buffer;
}

function readHint(r: WireReader): Buffer {
  return r.vector(2, 0, MAX_PSK_IDENTITY_LENGTH);
}

export function parseServerKeyExchangePsk(body: Buffer): ServerKeyExchangePsk | undefined {
  return decode(body, (r) => ({ identityHint: readHint(r) }));
}

export function parseServerKeyExchangeEcdhePsk(body: Buffer): ServerKeyExchangeEcdhePsk | undefined {
  return decode(body, (r) => {
    const identityHint = readHint(r);
    if (r.u8() !== EC_CURVE_TYPE_NAMED_CURVE) malformed();
    return { identityHint, namedGroup: r.u16(), publicKey: r.vector(1, 1, MAX_EC_POINT_LENGTH) };
  });
}

export function parseServerKeyExchange(
  body: Buffer,
  kx: KeyExchange,
): ServerKeyExchangePsk | ServerKeyExchangeEcdhePsk | undefined {
  return kx === 'psk' ? parseServerKeyExchangePsk(body) : parseServerKeyExchangeEcdhePsk(body);
}

export function encodeServerKeyExchangePsk(hint: Buffer): Buffer {
  return vector(2, hint, 0, MAX_PSK_IDENTITY_LENGTH, 'psk_identity_hint');
}

export function encodeServerKeyExchangeEcdhePsk(hint: Buffer, group: number, publicKey: Buffer): Buffer {
  return Buffer.concat([
    encodeServerKeyExchangePsk(hint),
    u8(EC_CURVE_TYPE_NAMED_CURVE),
    u16(group),
    vector(1, publicKey, 1, MAX_EC_POINT_LENGTH, 'ECPoint'),
  ]);
}
