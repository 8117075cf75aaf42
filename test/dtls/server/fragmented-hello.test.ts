/**
 * Issue 11 defect 5: a ClientHello in several handshake fragments (RFC 6347 4.2.3), as clients
 * at a small MTU send it, is answered: fragments in one datagram (several records) and in
 * several datagrams, through the cookie exchange to flight 4. The pre-cookie buffer is bounded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ContentType, HandshakeType } from '../../../src/dtls/constants.js';
import { encodeHandshake, fragmentHandshake, parseHandshakeFragments } from '../../../src/dtls/handshake/header.js';
import { HELLO_TTL_MS, HelloReassembly, MAX_HELLO_LENGTH } from '../../../src/dtls/hello-reassembly.js';
import { parseRecords } from '../../../src/dtls/record.js';
import { DtlsServer } from '../../../src/dtls/server.js';
import { deriveSoftware } from '../../../src/keys/derive.js';
import { clientHelloBody, plainRecord, RawUdpPeer, readHelloVerifyCookie, PskClientSession } from '../../helpers/dtls-raw.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start() {
  const server = new DtlsServer({ pskLookup: async (id) => [{ psk: deriveSoftware(MASTER, id), tag: 'k' }] });
  cleanups.push(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  const p = await RawUdpPeer.open(port);
  cleanups.push(() => p.close());
  return { server, p };
}

/** The ClientHello of `body` as plaintext records of at most 40 body bytes each. */
function fragmentedHello(body: Buffer, messageSeq: number, firstRecordSeq: number): Buffer[] {
  return fragmentHandshake(HandshakeType.client_hello, messageSeq, body, 40).map((f, i) => plainRecord(ContentType.handshake, firstRecordSeq + i, f));
}

const isFlight4 = (d: Buffer) =>
  parseRecords(d).records.some((r) => r.epoch === 0 && parseHandshakeFragments(r.fragment)?.some((f) => f.msgType === HandshakeType.server_hello));

describe('a fragmented ClientHello', () => {
  it.each([
    ['in one datagram (several records)', true],
    ['in several datagrams', false],
  ])('%s gets a HelloVerifyRequest, and the fragmented hello with the cookie gets flight 4', async (_name, oneDatagram) => {
    const { server, p } = await start();
    const s = new PskClientSession();
    const send = (records: Buffer[]) => (oneDatagram ? p.send(Buffer.concat(records)) : records.forEach((r) => p.send(r)));
    const first = fragmentedHello(clientHelloBody({ random: s.random }), 0, 0);
    expect(first.length).toBeGreaterThan(1);
    send(first);
    const hvr = await p.recvUntil((d) => readHelloVerifyCookie(d) !== undefined, 2000);
    expect(hvr).toBeDefined();
    send(fragmentedHello(clientHelloBody({ random: s.random, cookie: readHelloVerifyCookie(hvr!)! }), 1, first.length));
    const f4 = await p.recvUntil(isFlight4, 2000);
    expect(f4).toBeDefined();
    expect(server.handshakeCount).toBe(1);
  });
});

describe('HelloReassembly bounds', () => {
  const frag = (length: number, offset: number, body: Buffer, messageSeq = 0) => ({
    msgType: HandshakeType.client_hello, length, messageSeq, fragmentOffset: offset, fragmentLength: body.length, body,
  });

  it('refuses a hello longer than MAX_HELLO_LENGTH and overlapping fragments that disagree', () => {
    const r = new HelloReassembly();
    expect(r.add('a', [frag(MAX_HELLO_LENGTH + 1, 0, Buffer.alloc(10))])).toBe('dropped');
    expect(r.add('b', [frag(20, 0, Buffer.alloc(10, 1))])).toBe('incomplete');
    expect(r.add('b', [frag(20, 5, Buffer.alloc(10, 2))])).toBe('dropped');
    expect(r.size).toBe(0);
  });

  it('ignores a repeated fragment and refuses to store more than twice the announced length', () => {
    const r = new HelloReassembly();
    expect(r.add('a', [frag(100, 0, Buffer.alloc(60))])).toBe('incomplete');
    expect(r.add('a', [frag(100, 10, Buffer.alloc(40))])).toBe('incomplete'); // covered: not stored
    expect(r.add('a', [frag(100, 50, Buffer.alloc(20))])).toBe('incomplete'); // 80 stored
    expect(r.add('a', [frag(100, 40, Buffer.alloc(30))])).toBe('incomplete'); // 110 stored
    expect(r.add('a', [frag(100, 0, Buffer.alloc(99))])).toBe('dropped'); // would be 209 > 200
    expect(r.size).toBe(0);
  });

  it('holds at most maxSources young entries, and makes room only by expiry', () => {
    let t = 0;
    const r = new HelloReassembly(2, () => t);
    expect(r.add('a', [frag(20, 0, Buffer.alloc(10))])).toBe('incomplete');
    expect(r.add('b', [frag(20, 0, Buffer.alloc(10))])).toBe('incomplete');
    expect(r.add('c', [frag(20, 0, Buffer.alloc(10))])).toBe('dropped');
    t = HELLO_TTL_MS + 1;
    expect(r.add('c', [frag(20, 0, Buffer.alloc(10))])).toBe('incomplete');
    expect(r.size).toBe(2);
    r.sweep();
    expect(r.size).toBe(1);
  });

  it('assembles out-of-order, overlapping fragments', () => {
    const r = new HelloReassembly();
    const whole = Buffer.from('0123456789abcdefghij');
    expect(r.add('a', [frag(20, 10, whole.subarray(10))])).toBe('incomplete');
    const out = r.add('a', [frag(20, 0, whole.subarray(0, 12))]);
    expect(typeof out === 'object' && out.body.toString()).toBe(whole.toString());
  });
});

describe('the cookie and session_id (defect 6)', () => {
  it('a client that draws a new session_id for its second ClientHello (mbedTLS 2.28 with a ticket) gets flight 4, not another HelloVerifyRequest', async () => {
    const { server, p } = await start();
    const s = new PskClientSession({ sessionId: Buffer.alloc(32, 1) });
    p.send(s.firstHello());
    const hvr = await p.recvUntil((d) => readHelloVerifyCookie(d) !== undefined, 2000);
    const body = clientHelloBody({ random: s.random, sessionId: Buffer.alloc(32, 2), cookie: readHelloVerifyCookie(hvr!)! });
    p.send(plainRecord(ContentType.handshake, 1, encodeHandshake(HandshakeType.client_hello, 1, body)));
    const f4 = await p.recvUntil(isFlight4, 2000);
    expect(f4).toBeDefined();
    expect(server.stats.dropped.bad_cookie_hello ?? 0).toBe(0);
  });
});
