import { describe, expect, it } from 'vitest';
import { HandshakeType } from '../../../src/dtls/constants.js';
import {
  encodeHandshake,
  fragmentHandshake,
  parseHandshakeFragments,
  writeHandshakeHeader,
} from '../../../src/dtls/handshake/header.js';
import { parseRecords } from '../../../src/dtls/record.js';
import { expectRejectsTruncationAndTrailing, handshakeMessages, hex, loadFlight } from './flights.js';

describe('handshake header (RFC 6347 4.2.2)', () => {
  it('reads the headers of a real server flight (OpenSSL s_server)', () => {
    const msgs = handshakeMessages('openssl-s_server-ecdhe-psk-chacha20-poly1305-server-hello');
    expect(msgs.map(({ fragment: f }) => [f.msgType, f.length, f.messageSeq, f.fragmentOffset, f.fragmentLength])).toEqual([
      [HandshakeType.server_hello, 53, 1, 0, 53],
      [HandshakeType.server_key_exchange, 45, 2, 0, 45],
      [HandshakeType.server_hello_done, 0, 3, 0, 0],
    ]);
  });

  it('re-encodes every captured message to the same record fragment', () => {
    for (const name of ['openssl-s_server-psk-aes128-ccm8-server-hello', 'gnutls-cli-client-key-exchange', 'coap-client-gnutls-client-hello']) {
      for (const { record, fragment } of handshakeMessages(name)) {
        expect(encodeHandshake(fragment.msgType, fragment.messageSeq, fragment.body).equals(record.fragment)).toBe(true);
      }
    }
  });

  it('parses several messages in one record and rejects every other truncation', () => {
    const first = encodeHandshake(HandshakeType.server_hello_done, 3, Buffer.alloc(0));
    const second = encodeHandshake(HandshakeType.finished, 4, Buffer.alloc(12, 9));
    const both = Buffer.concat([first, second]);
    expect(parseHandshakeFragments(both)!.map((f) => f.messageSeq)).toEqual([3, 4]);
    expectRejectsTruncationAndTrailing(parseHandshakeFragments, both, [first.length]);
  });

  it('rejects an empty record and a fragment reaching past its message', () => {
    expect(parseHandshakeFragments(Buffer.alloc(0))).toBeUndefined();
    expect(parseHandshakeFragments(hex('14 00000c 0000 000008 000005 0102030405'))).toBeUndefined();
    expect(parseHandshakeFragments(hex('14 00000c 0000 000007 000005 0102030405'))).toHaveLength(1);
  });

  it('writes a header at an offset', () => {
    const target = Buffer.alloc(14);
    expect(writeHandshakeHeader(target, 1, 1, 0x010203, 7, 0x10, 0x20)).toBe(13);
    expect(target).toEqual(hex('00 01 010203 0007 000010 000020 00'));
    expect(() => writeHandshakeHeader(target, 0, 1, 10, 0, 5, 6)).toThrow(RangeError);
  });
});

describe('fragmentHandshake (RFC 6347 4.2.3)', () => {
  const body = handshakeMessages('coap-client-openssl-client-hello')[0]!.fragment.body;

  it('splits a real ClientHello into fragments that reassemble to it', () => {
    const parts = fragmentHandshake(HandshakeType.client_hello, 0, body, 100);
    expect(parts).toHaveLength(Math.ceil(body.length / 100));
    const frags = parts.map((p) => parseHandshakeFragments(p)![0]!);
    expect(frags.map((f) => f.fragmentOffset)).toEqual(frags.map((_, i) => i * 100));
    for (const f of frags) expect([f.msgType, f.length, f.messageSeq]).toEqual([1, body.length, 0]);
    expect(Buffer.concat(frags.map((f) => f.body)).equals(body)).toBe(true);
    expect(frags.at(-1)!.fragmentLength).toBe(body.length % 100 || 100);
  });

  it('sends one whole message when it fits, and one empty fragment for an empty body', () => {
    expect(fragmentHandshake(1, 0, body, body.length)).toEqual([encodeHandshake(1, 0, body)]);
    expect(fragmentHandshake(14, 3, Buffer.alloc(0), 10)).toEqual([hex('0e 000000 0003 000000 000000')]);
    expect(() => fragmentHandshake(1, 0, body, 0)).toThrow(RangeError);
  });
});

describe('records of the captured flights', () => {
  it('hold only well-formed handshake fragments in epoch 0', () => {
    for (const name of ['gnutls-cli-client-hello', 'openssl-s_server-psk-aes128-ccm8-server-hello']) {
      for (const d of loadFlight(name)) {
        for (const r of parseRecords(d).records) expect(parseHandshakeFragments(r.fragment)).toBeDefined();
      }
    }
  });
});
