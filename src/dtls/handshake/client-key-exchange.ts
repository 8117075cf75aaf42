/**
 * ClientKeyExchange for PSK (RFC 4279 2: psk_identity) and ECDHE_PSK (RFC 5489 2: psk_identity
 * followed by ClientECDiffieHellmanPublic of RFC 8422 5.7). The identity is returned as bytes:
 * RFC 4279 5.1 says it is UTF-8 but the resolver must not trust that.
 */

import type { KeyExchange } from '../ciphers/types.js';
import { decode, vector } from '../wire.js';
import { MAX_EC_POINT_LENGTH, MAX_PSK_IDENTITY_LENGTH } from './server-key-exchange.js';

export interface ClientKeyExchangePsk {
  identity: Buffer;
}

export interface ClientKeyExchangeEcdhePsk {
  identity: Buffer;
  publicKey: Buffer;
}

export function parseClientKeyExchange(body: Buffer, kx: 'psk'): ClientKeyExchangePsk | undefined;
export function parseClientKeyExchange(body: Buffer, kx: 'ecdhe_psk'): ClientKeyExchangeEcdhePsk | undefined;
export function parseClientKeyExchange(
  body: Buffer,
  kx: KeyExchange,
): ClientKeyExchangePsk | ClientKeyExchangeEcdhePsk | undefined;
export function parseClientKeyExchange(
  body: Buffer,
  kx: KeyExchange,
): ClientKeyExchangePsk | ClientKeyExchangeEcdhePsk | undefined {
  return decode(body, (r) => {
    const identity = r.vector(2, 0, MAX_PSK_IDENTITY_LENGTH);
    if (kx === 'psk') return { identity };
    return { identity, publicKey: r.vector(1, 1, MAX_EC_POINT_LENGTH) };
  });
}

export function encodeClientKeyExchangePsk(identity: Buffer): Buffer {
  return vector(2, identity, 0, MAX_PSK_IDENTITY_LENGTH, 'psk_identity');
}

export function encodeClientKeyExchangeEcdhePsk(identity: Buffer, publicKey: Buffer): Buffer {
  return Buffer.concat([encodeClientKeyExchangePsk(identity), vector(1, publicKey, 1, MAX_EC_POINT_LENGTH, 'ecdh_Yc')]);
}
