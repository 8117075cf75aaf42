import { describe, expect, it } from 'vitest';
import { ContentType, DTLS_1_0, DTLS_1_2, HandshakeType } from '../../../src/dtls/constants.js';
import { encodeHandshake } from '../../../src/dtls/handshake/header.js';
import { encodeHelloVerifyRequest, parseHelloVerifyRequest } from '../../../src/dtls/handshake/hello-verify-request.js';
import { encodeRecord } from '../../../src/dtls/record.js';
import { expectRejectsTruncationAndTrailing, handshakeMessages, hex, loadFlight } from './flights.js';

describe('HelloVerifyRequest (RFC 6347 4.2.1)', () => {
  for (const cipher of ['psk-aes128-ccm8', 'ecdhe-psk-chacha20-poly1305']) {
    const name = `openssl-s_server-${cipher}-hello-verify-request`;

    it(`OpenSSL s_server (${cipher}) sends DTLS 1.0 in the message and its record`, () => {
      const [{ record, fragment }] = handshakeMessages(name);
      expect([record.version, record.epoch, record.sequenceNumber]).toEqual([DTLS_1_0, 0, 0]);
      expect([fragment.msgType, fragment.messageSeq]).toEqual([HandshakeType.hello_verify_request, 0]);
      const hvr = parseHelloVerifyRequest(fragment.body)!;
      expect(hvr.serverVersion).toBe(DTLS_1_0);
      expect(hvr.cookie).toHaveLength(20);
    });

    it(`our encoder, with its DTLS 1.0 default, rebuilds the OpenSSL datagram (${cipher})`, () => {
      const [{ fragment }] = handshakeMessages(name);
      const { cookie } = parseHelloVerifyRequest(fragment.body)!;
      const body = encodeHelloVerifyRequest({ cookie });
      const wire = encodeRecord(ContentType.handshake, DTLS_1_0, 0, 0, encodeHandshake(HandshakeType.hello_verify_request, 0, body));
      expect(wire.equals(loadFlight(name)[0]!)).toBe(true);
      expectRejectsTruncationAndTrailing(parseHelloVerifyRequest, fragment.body);
    });
  }

  it('carries cookies of 0..255 bytes and an explicit version', () => {
    expect(encodeHelloVerifyRequest({ cookie: Buffer.alloc(0), serverVersion: DTLS_1_2 })).toEqual(hex('fefd00'));
    const long = { serverVersion: DTLS_1_0, cookie: Buffer.alloc(255, 3) };
    expect(parseHelloVerifyRequest(encodeHelloVerifyRequest(long))).toEqual(long);
    expect(() => encodeHelloVerifyRequest({ cookie: Buffer.alloc(256) })).toThrow(RangeError);
  });
});
