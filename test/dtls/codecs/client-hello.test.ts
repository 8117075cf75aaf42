import { describe, expect, it } from 'vitest';
import { DTLS_1_0, DTLS_1_2, HandshakeType } from '../../../src/dtls/constants.js';
import { encodeClientHello, parseClientHello } from '../../../src/dtls/handshake/client-hello.js';
import { encodeHandshake } from '../../../src/dtls/handshake/header.js';
import { encodeRecord } from '../../../src/dtls/record.js';
import { expectRejectsTruncationAndTrailing, handshakeMessages, hex, loadFlight } from './flights.js';

const suites = (s: string) => s.split(' ').map((x) => parseInt(x, 16));

/** What each real client offers, read off the captured bytes. */
const PEERS = {
  'coap-client-openssl': {
    recordVersion: DTLS_1_0,
    cipherSuites: suites(
      '00ad 00ab ccae ccad ccac c0ab c0a7 c06f c06d 00a9 ccab c0a9 c0a5 c06b 00ac 00aa c0aa c0a6 c06e c06c 00a8 c0a8 ' +
        'c0a4 c06a c038 c036 00b7 00b3 0095 0091 c09b c099 c097 00af 008d c095 c037 c035 00b6 00b2 0094 0090 c09a c098 ' +
        'c096 00ae 008c c094 00ff',
    ),
    extensions: [0, 11, 10, 35, 22, 23, 13],
  },
  'coap-client-gnutls': {
    recordVersion: DTLS_1_0,
    cipherSuites: suites('ccac c036 c035 c037 00a9 ccab c0a5 008d 00a8 c0a4 008c 00ae c0a8'),
    extensions: [10, 11, 13, 22, 23, 35, 0xff01, 0, 28],
  },
  'openssl-psk-aes128-ccm8': {
    recordVersion: DTLS_1_0,
    cipherSuites: [0xc0a8, 0x00ff],
    extensions: [35, 22, 23, 13],
  },
  'openssl-ecdhe-psk-chacha20-poly1305': {
    recordVersion: DTLS_1_0,
    cipherSuites: [0xccac, 0x00ff],
    extensions: [11, 10, 35, 22, 23, 13],
  },
  'gnutls-cli': {
    recordVersion: DTLS_1_2,
    cipherSuites: suites('ccac c036 c035 00a9 ccab c0a5 008d 00a8 c0a4 008c'),
    extensions: [5, 10, 11, 13, 22, 23, 35, 0xff01, 28],
  },
} as const;

describe('ClientHello from real peers', () => {
  for (const [peer, expected] of Object.entries(PEERS)) {
    describe(peer, () => {
      const first = handshakeMessages(`${peer}-client-hello`);
      const second = handshakeMessages(`${peer}-client-hello-cookie`);

      it('parses the fields the client offers', () => {
        for (const [msgs, seq, cookieLength] of [[first, 0, 0], [second, 1, 20]] as const) {
          expect(msgs).toHaveLength(1);
          const { record, fragment } = msgs[0]!;
          expect(record.version).toBe(expected.recordVersion);
          expect(record.sequenceNumber).toBe(seq);
          expect(fragment.msgType).toBe(HandshakeType.client_hello);
          expect(fragment.messageSeq).toBe(seq);
          const ch = parseClientHello(fragment.body)!;
          expect(ch.clientVersion).toBe(DTLS_1_2);
          expect(ch.random).toHaveLength(32);
          expect(ch.sessionId).toHaveLength(0);
          expect(ch.cookie).toHaveLength(cookieLength);
          expect(ch.cipherSuites).toEqual(expected.cipherSuites);
          expect(ch.compressionMethods).toEqual([0]);
          expect(ch.extensions.map((e) => e.type)).toEqual(expected.extensions);
        }
      });

      it('repeats the first hello with the cookie added (RFC 6347 4.2.1)', () => {
        const a = parseClientHello(first[0]!.fragment.body)!;
        const b = parseClientHello(second[0]!.fragment.body)!;
        expect({ ...b, cookie: a.cookie }).toEqual(a);
      });

      it('re-encodes to the same bytes, up to the datagram', () => {
        for (const name of [`${peer}-client-hello`, `${peer}-client-hello-cookie`]) {
          const [datagram] = loadFlight(name);
          const { record, fragment } = handshakeMessages(name)[0]!;
          const body = encodeClientHello(parseClientHello(fragment.body)!);
          expect(body.equals(fragment.body)).toBe(true);
          const wire = encodeRecord(record.type, record.version, 0, record.sequenceNumber, encodeHandshake(1, fragment.messageSeq, body));
          expect(wire.equals(datagram!)).toBe(true);
        }
      });

      it('rejects every truncation and trailing bytes', () => {
        const body = second[0]!.fragment.body;
        // Cutting off exactly the whole extensions block leaves a valid extension-less hello.
        const ch = parseClientHello(body)!;
        const withoutExtensions = encodeClientHello({ ...ch, extensions: [] }).length;
        expectRejectsTruncationAndTrailing(parseClientHello, body, [withoutExtensions]);
      });
    });
  }
});

describe('ClientHello bounds', () => {
  const minimal = {
    clientVersion: DTLS_1_2,
    random: Buffer.alloc(32, 7),
    sessionId: Buffer.alloc(0),
    cookie: Buffer.alloc(0),
    cipherSuites: [0xc0a8],
    compressionMethods: [0],
    extensions: [],
  };

  it('encodes a hello without extensions as the bare RFC structure', () => {
    expect(encodeClientHello(minimal)).toEqual(hex('fefd' + '07'.repeat(32) + '00 00 0002c0a8 0100'));
  });

  it('accepts a 255-byte cookie (DTLS 1.2) and an empty extensions block', () => {
    const ch = { ...minimal, cookie: Buffer.alloc(255, 1) };
    expect(parseClientHello(encodeClientHello(ch))).toEqual(ch);
    expect(parseClientHello(Buffer.concat([encodeClientHello(minimal), hex('0000')]))).toEqual(minimal);
  });

  it('rejects vectors outside their bounds', () => {
    const body = encodeClientHello(minimal);
    const at = 2 + 32;
    const patch = (offset: number, bytes: string) => {
      const b = Buffer.from(body);
      hex(bytes).copy(b, offset);
      return b;
    };
    // session_id longer than 32
    expect(parseClientHello(Buffer.concat([body.subarray(0, at), hex('21'), Buffer.alloc(33), body.subarray(at + 1)]))).toBeUndefined();
    expect(parseClientHello(patch(at + 2, '0000'))).toBeUndefined(); // no cipher suites
    expect(parseClientHello(Buffer.concat([body.subarray(0, at + 2), hex('0003c0a800 0100')]))).toBeUndefined(); // odd suites length
    expect(parseClientHello(Buffer.concat([body.subarray(0, at + 6), hex('00')]))).toBeUndefined(); // no compression method
    expect(parseClientHello(Buffer.concat([body, hex('0005 0017 0000')]))).toBeUndefined(); // block length too long
    expect(parseClientHello(Buffer.concat([body, hex('0008 0017 0000 0017 0000')]))).toBeUndefined(); // repeated extension
    expect(() => encodeClientHello({ ...minimal, sessionId: Buffer.alloc(33) })).toThrow(RangeError);
    expect(() => encodeClientHello({ ...minimal, cipherSuites: [] })).toThrow(RangeError);
  });
});
