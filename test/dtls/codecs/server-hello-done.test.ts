import { describe, expect, it } from 'vitest';
import { HandshakeType } from '../../../src/dtls/constants.js';
import { encodeHandshake } from '../../../src/dtls/handshake/header.js';
import { encodeServerHelloDone, parseServerHelloDone } from '../../../src/dtls/handshake/server-hello-done.js';
import { handshakeMessages, hex } from './flights.js';

describe('ServerHelloDone (RFC 5246 7.4.5)', () => {
  it('matches the message OpenSSL s_server sent, header and all', () => {
    const msg = handshakeMessages('openssl-s_server-psk-aes128-ccm8-server-hello').at(-1)!;
    expect(msg.record.fragment).toEqual(hex('0e 000000 0003 000000 000000'));
    expect(parseServerHelloDone(msg.fragment.body)).toEqual({});
    expect(encodeHandshake(HandshakeType.server_hello_done, 3, encodeServerHelloDone()).equals(msg.record.fragment)).toBe(true);
  });

  it('rejects any body byte', () => {
    expect(parseServerHelloDone(hex('00'))).toBeUndefined();
  });
});
