import { describe, expect, it } from 'vitest';
import { HandshakeType } from '../../../src/dtls/constants.js';
import {
  encodeClientKeyExchangeEcdhePsk,
  encodeClientKeyExchangePsk,
  parseClientKeyExchange,
} from '../../../src/dtls/handshake/client-key-exchange.js';
import { expectRejectsTruncationAndTrailing, handshakeMessages, hex, messageBody } from './flights.js';

// Every capture ran with identity SN1; the message follows ClientHello (0) and ClientHello+cookie (1).
const SN1 = Buffer.from('SN1');

describe('ClientKeyExchange, PSK (RFC 4279 2)', () => {
  const body = messageBody('openssl-psk-aes128-ccm8-client-key-exchange', HandshakeType.client_key_exchange);

  it('reads the identity OpenSSL sent and re-encodes it', () => {
    expect(handshakeMessages('openssl-psk-aes128-ccm8-client-key-exchange')[0]!.fragment.messageSeq).toBe(2);
    expect(body).toEqual(hex('0003 534e31'));
    expect(parseClientKeyExchange(body, 'psk')).toEqual({ identity: SN1 });
    expect(encodeClientKeyExchangePsk(SN1).equals(body)).toBe(true);
    expectRejectsTruncationAndTrailing((b) => parseClientKeyExchange(b, 'psk'), body);
  });

  it('is not an ECDHE_PSK message', () => {
    expect(parseClientKeyExchange(body, 'ecdhe_psk')).toBeUndefined();
  });
});

describe('ClientKeyExchange, ECDHE_PSK (RFC 5489 2)', () => {
  // The capture server offered secp256r1, so each point is 65 bytes, uncompressed (0x04).
  for (const peer of ['openssl-ecdhe-psk-chacha20-poly1305', 'coap-client-openssl', 'coap-client-gnutls', 'gnutls-cli']) {
    it(`reads identity and point from ${peer} and re-encodes them`, () => {
      const body = messageBody(`${peer}-client-key-exchange`, HandshakeType.client_key_exchange);
      const cke = parseClientKeyExchange(body, 'ecdhe_psk')!;
      expect(cke.identity).toEqual(SN1);
      expect(cke.publicKey).toHaveLength(65);
      expect(cke.publicKey[0]).toBe(4);
      expect(encodeClientKeyExchangeEcdhePsk(cke.identity, cke.publicKey).equals(body)).toBe(true);
      expectRejectsTruncationAndTrailing((b) => parseClientKeyExchange(b, 'ecdhe_psk'), body);
      expect(parseClientKeyExchange(body, 'psk')).toBeUndefined();
    });
  }

  it('rejects an empty point and refuses to encode one', () => {
    expect(parseClientKeyExchange(hex('0003 534e31 00'), 'ecdhe_psk')).toBeUndefined();
    expect(() => encodeClientKeyExchangeEcdhePsk(SN1, Buffer.alloc(0))).toThrow(RangeError);
    expect(() => encodeClientKeyExchangePsk(Buffer.alloc(0x10000))).toThrow(RangeError);
  });
});
