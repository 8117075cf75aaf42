import { describe, expect, it } from 'vitest';
import { HandshakeType, NamedGroup } from '../../../src/dtls/constants.js';
import {
  encodeServerKeyExchangeEcdhePsk,
  encodeServerKeyExchangePsk,
  parseServerKeyExchange,
  parseServerKeyExchangeEcdhePsk,
  parseServerKeyExchangePsk,
} from '../../../src/dtls/handshake/server-key-exchange.js';
import { expectRejectsTruncationAndTrailing, hex, messageBody } from './flights.js';

// OpenSSL s_server was run with -psk_hint SN-hint.
const hint = Buffer.from('SN-hint');

describe('ServerKeyExchange, PSK (RFC 4279 2)', () => {
  const body = messageBody('openssl-s_server-psk-aes128-ccm8-server-hello', HandshakeType.server_key_exchange);

  it('parses the identity hint from OpenSSL and re-encodes it', () => {
    expect(parseServerKeyExchangePsk(body)).toEqual({ identityHint: hint });
    expect(parseServerKeyExchange(body, 'psk')).toEqual({ identityHint: hint });
    expect(encodeServerKeyExchangePsk(hint).equals(body)).toBe(true);
    expectRejectsTruncationAndTrailing(parseServerKeyExchangePsk, body);
  });

  it('allows an empty hint', () => {
    expect(encodeServerKeyExchangePsk(Buffer.alloc(0))).toEqual(hex('0000'));
    expect(parseServerKeyExchangePsk(hex('0000'))).toEqual({ identityHint: Buffer.alloc(0) });
  });
});

describe('ServerKeyExchange, ECDHE_PSK (RFC 5489 2)', () => {
  const body = messageBody('openssl-s_server-ecdhe-psk-chacha20-poly1305-server-hello', HandshakeType.server_key_exchange);

  it('parses hint, named curve and X25519 point from OpenSSL and re-encodes them', () => {
    const ske = parseServerKeyExchangeEcdhePsk(body)!;
    expect(ske.identityHint).toEqual(hint);
    expect(ske.namedGroup).toBe(NamedGroup.x25519);
    expect(ske.publicKey).toHaveLength(32);
    expect(parseServerKeyExchange(body, 'ecdhe_psk')).toEqual(ske);
    expect(encodeServerKeyExchangeEcdhePsk(hint, NamedGroup.x25519, ske.publicKey).equals(body)).toBe(true);
    expectRejectsTruncationAndTrailing(parseServerKeyExchangeEcdhePsk, body);
    expect(parseServerKeyExchangePsk(body)).toBeUndefined();
  });

  it('requires curve_type named_curve and a non-empty point', () => {
    expect(parseServerKeyExchangeEcdhePsk(hex('0000 03 0017 01 04'))).toEqual({
      identityHint: Buffer.alloc(0),
      namedGroup: NamedGroup.secp256r1,
      publicKey: hex('04'),
    });
    expect(parseServerKeyExchangeEcdhePsk(hex('0000 01 0017 01 04'))).toBeUndefined(); // explicit_prime
    expect(parseServerKeyExchangeEcdhePsk(hex('0000 03 0017 00'))).toBeUndefined();
    expect(() => encodeServerKeyExchangeEcdhePsk(hint, 23, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => encodeServerKeyExchangeEcdhePsk(hint, 23, Buffer.alloc(256))).toThrow(RangeError);
  });
});
