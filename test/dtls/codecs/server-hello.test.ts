import { describe, expect, it } from 'vitest';
import { DTLS_1_2, ExtensionType, HandshakeType } from '../../../src/dtls/constants.js';
import { encodeServerHello, parseServerHello } from '../../../src/dtls/handshake/server-hello.js';
import { expectRejectsTruncationAndTrailing, hex, messageBody } from './flights.js';

describe('ServerHello (RFC 5246 7.4.1.3), from OpenSSL s_server', () => {
  for (const [cipher, suite] of [['psk-aes128-ccm8', 0xc0a8], ['ecdhe-psk-chacha20-poly1305', 0xccac]] as const) {
    const body = messageBody(`openssl-s_server-${cipher}-server-hello`, HandshakeType.server_hello);

    it(`parses the chosen suite ${suite.toString(16)} and the echoed extensions`, () => {
      const sh = parseServerHello(body)!;
      expect(sh.serverVersion).toBe(DTLS_1_2);
      expect(sh.random).toHaveLength(32);
      expect(sh.sessionId).toHaveLength(0);
      expect(sh.cipherSuite).toBe(suite);
      expect(sh.compressionMethod).toBe(0);
      expect(sh.extensions).toEqual([
        { type: ExtensionType.renegotiation_info, data: hex('00') },
        { type: ExtensionType.session_ticket, data: Buffer.alloc(0) },
        { type: ExtensionType.extended_master_secret, data: Buffer.alloc(0) },
      ]);
    });

    it('re-encodes to the same bytes and rejects truncations and trailing bytes', () => {
      const sh = parseServerHello(body)!;
      expect(encodeServerHello(sh).equals(body)).toBe(true);
      const bare = encodeServerHello({ ...sh, extensions: [] });
      expect(bare).toHaveLength(2 + 32 + 1 + 2 + 1);
      expectRejectsTruncationAndTrailing(parseServerHello, body, [bare.length]);
    });
  }

  it('rejects a session_id over 32 bytes', () => {
    const body = Buffer.concat([hex('fefd'), Buffer.alloc(32), hex('21'), Buffer.alloc(33), hex('c0a8 00')]);
    expect(parseServerHello(body)).toBeUndefined();
  });
});
