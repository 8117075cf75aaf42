/**
 * CoAP conformance of the real server over DTLS (RFC 7252 messaging, RFC 7641 Observe, RFC 7959
 * block-wise), in process on loopback with this project's DTLS client; the CoAP messages are
 * built and parsed by node-coap's codec (coap-packet), never by the server's own.
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteResponse } from '../../src/coap/router.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { block, DtlsCoapPeer, option, uint, unblock, type ParsedPacket } from '../helpers/coap-dtls-peer.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
const BIG = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
const MAX_BODY = 8192;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: CoapPskServer;
let port: number;
const seen = { count: 0, slow: 0 };
const observers = new Set<RouteResponse>();
const relationEnds: string[] = [];
const uploads: number[] = [];

function notifyAll(value: string): void {
  for (const res of [...observers]) res.write(value);
}

function connect(serial: string, socket?: dgram.Socket): Promise<DtlsCoapPeer> {
  return DtlsCoapPeer.connect(port, serial, deriveSoftware(MASTER, Buffer.from(serial)), socket);
}

const isEmpty = (p: ParsedPacket) => p.code === '0.00';
const byMid = (mid: number) => (p: ParsedPacket) => p.messageId === mid;
const byToken = (token: Buffer) => (p: ParsedPacket) => p.token.equals(token) && p.code !== '0.00';

beforeAll(async () => {
  server = await createServer({
    keys: new SoftwareResolver({ keys: [{ label: 'k-conf', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} }),
    coap: { ackTimeoutMs: 300, maxBlock1Body: MAX_BODY, maxObserveRelations: 2 },
    routes: (router) => {
      router.get('/count', (_req, res) => res.end(String(++seen.count)));
      router.post('/slow', async (_req, res) => {
        seen.slow++;
        await sleep(300);
        res.end('slow done');
      });
      router.get('/obs', { obs: true }, (_req, res) => {
        if (!res.observing) {
          res.end('plain');
          return;
        }
        res.write('v0');
        observers.add(res);
        res.onClose((reason) => {
          observers.delete(res);
          relationEnds.push(reason);
        });
      });
      router.put('/upload', (req, res) => {
        uploads.push(req.payload.length);
        res.code = '2.04';
        res.end();
      });
      router.get('/big', (_req, res) => res.end(BIG));
    },
  });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
});

describe('messaging (RFC 7252 4-5)', () => {
  let peer: DtlsCoapPeer;
  beforeAll(async () => {
    peer = await connect('SN-conf-msg');
  });
  afterAll(() => peer.close());

  it('answers a duplicate CON with the same piggybacked reply, running the handler once', async () => {
    const before = seen.count;
    const req = { messageId: 0x1001, token: Buffer.from([1]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('count') }] };
    peer.send(req);
    const first = await peer.next(byMid(0x1001));
    peer.send(req);
    const second = await peer.next(byMid(0x1001));
    expect(first.ack).toBe(true);
    expect(first.code).toBe('2.05');
    expect(second.payload.equals(first.payload)).toBe(true);
    expect(seen.count).toBe(before + 1);
  });

  it('answers a duplicate CON after the empty ACK of a 300 ms handler without running it again', async () => {
    const before = seen.slow;
    const token = Buffer.from([2, 2]);
    const req = { messageId: 0x1002, token, confirmable: true, code: 'POST', options: [{ name: 'Uri-Path', value: Buffer.from('slow') }] };
    peer.send(req);
    const ack = await peer.next(byMid(0x1002));
    expect(ack.ack && isEmpty(ack)).toBe(true);
    peer.send(req); // the client's retransmission, while the handler still runs
    const ack2 = await peer.next(byMid(0x1002));
    expect(ack2.ack && isEmpty(ack2)).toBe(true);
    const response = await peer.next(byToken(token));
    expect(response.confirmable).toBe(true);
    expect(response.payload.toString()).toBe('slow done');
    peer.send({ messageId: response.messageId, ack: true, code: '0.00' });
    peer.send(req); // and once more after the response
    const ack3 = await peer.next(byMid(0x1002));
    expect(ack3.ack && isEmpty(ack3)).toBe(true);
    await sleep(400);
    expect(seen.slow).toBe(before + 1);
  });

  it('runs a NON request once when it arrives twice', async () => {
    const before = seen.count;
    const req = { messageId: 0x1003, token: Buffer.from([3]), confirmable: false, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('count') }] };
    peer.send(req);
    peer.send(req);
    const reply = await peer.next(byToken(Buffer.from([3])));
    expect(reply.confirmable || reply.ack).toBe(false);
    const more = await peer.collect(300);
    expect(more.filter((p) => p.token.equals(Buffer.from([3])))).toEqual([]);
    expect(seen.count).toBe(before + 1);
  });

  it('retransmits a separate response until acknowledged, and stops at a RST', async () => {
    const token = Buffer.from([4, 4]);
    peer.send({ messageId: 0x1004, token, confirmable: true, code: 'POST', options: [{ name: 'Uri-Path', value: Buffer.from('slow') }] });
    await peer.next(byMid(0x1004));
    const first = await peer.next(byToken(token));
    expect(first.confirmable).toBe(true);
    const again = await peer.next(byToken(token), 2000); // ACK_TIMEOUT 300 ms × up to 1.5
    expect(again.messageId).toBe(first.messageId);
    peer.send({ messageId: first.messageId, reset: true, code: '0.00' });
    const later = await peer.collect(2500);
    expect(later.filter((p) => p.token.equals(token))).toEqual([]);
  });

  it('answers an empty CON (CoAP ping) with a RST', async () => {
    peer.send(Buffer.from([0x40, 0x00, 0x10, 0x05]));
    const rst = await peer.next(byMid(0x1005));
    expect(rst.reset).toBe(true);
    expect(isEmpty(rst)).toBe(true);
  });

  it('rejects a malformed CON with a RST: a reserved option nibble, a payload marker with no payload, TKL 9-15', async () => {
    const bad = [
      Buffer.from([0x40, 0x01, 0x10, 0x06, 0xf0]), // option delta 15 without being a payload marker
      Buffer.from([0x40, 0x01, 0x10, 0x07, 0xb1, 0x61, 0xff]), // marker, then nothing
      Buffer.from([0x40, 0x01, 0x10, 0x08, 0xb3, 0x61]), // option running past the end
    ];
    for (let tkl = 9; tkl <= 15; tkl++) bad.push(Buffer.concat([Buffer.from([0x40 | tkl, 0x01, 0x11, tkl]), Buffer.alloc(15, 7)]));
    for (const datagram of bad) {
      peer.send(datagram);
      const mid = datagram.readUInt16BE(2);
      const rst = await peer.next(byMid(mid));
      expect(rst.reset, `message ${mid.toString(16)}`).toBe(true);
    }
  });

  it('answers 4.02 to a CON request with an unknown critical option', async () => {
    peer.send({ messageId: 0x1009, token: Buffer.from([9]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('count') }, { name: '2049', value: Buffer.from('x') }] });
    const res = await peer.next(byMid(0x1009));
    expect(res.ack).toBe(true);
    expect(res.code).toBe('4.02');
  });

  it('answers a CON response that answers nothing with a RST', async () => {
    peer.send({ messageId: 0x100a, token: Buffer.from([10]), confirmable: true, code: '2.05', payload: Buffer.from('?') });
    expect((await peer.next(byMid(0x100a))).reset).toBe(true);
  });
});

describe('Observe (RFC 7641)', () => {
  const obsGet = (messageId: number, token: Buffer, observe: number | undefined, confirmable = true) => ({
    messageId,
    token,
    confirmable,
    code: 'GET',
    options: [
      ...(observe === undefined ? [] : [{ name: 'Observe' as const, value: observe === 0 ? Buffer.alloc(0) : Buffer.from([observe]) }]),
      { name: 'Uri-Path' as const, value: Buffer.from('obs') },
    ],
  });

  it('registers, and replaces the relation on a re-registration with the same token', async () => {
    const peer = await connect('SN-conf-obs');
    relationEnds.length = 0;
    const token = Buffer.from('t1');
    peer.send(obsGet(0x2001, token, 0));
    const reg = await peer.next(byMid(0x2001));
    expect(reg.code).toBe('2.05');
    expect(option(reg, 'Observe')).toBeDefined();
    notifyAll('v1');
    const n1 = await peer.next(byToken(token));
    expect(n1.confirmable).toBe(true); // a CON registration gets CON notifications
    expect(n1.payload.toString()).toBe('v1');
    expect(uint(option(n1, 'Observe'))!).toBeGreaterThan(uint(option(reg, 'Observe'))!);
    peer.send({ messageId: n1.messageId, ack: true, code: '0.00' });

    peer.send(obsGet(0x2002, token, 0)); // the same token again: replaces, never adds
    await peer.next(byMid(0x2002));
    notifyAll('v2');
    const n2 = await peer.next(byToken(token));
    peer.send({ messageId: n2.messageId, ack: true, code: '0.00' });
    expect((await peer.collect(200)).filter((p) => p.token.equals(token))).toEqual([]);
    expect(relationEnds).toEqual(['re-registered']);
    await peer.close();
  });

  it('deregisters on a GET with Observe: 1 and the relation\'s token', async () => {
    const peer = await connect('SN-conf-obs-dereg');
    relationEnds.length = 0;
    const token = Buffer.from('d1');
    peer.send(obsGet(0x2011, token, 0));
    await peer.next(byMid(0x2011));
    peer.send(obsGet(0x2012, token, 1));
    const dereg = await peer.next(byMid(0x2012));
    expect(dereg.code).toBe('2.05');
    expect(option(dereg, 'Observe')).toBeUndefined();
    notifyAll('v3');
    expect((await peer.collect(300)).filter((p) => p.token.equals(token))).toEqual([]);
    expect(relationEnds).toEqual(['deregistered']);
    await peer.close();
  });

  it('sends NON notifications to a NON registration, and ends the relation at a RST to one', async () => {
    const peer = await connect('SN-conf-obs-non');
    relationEnds.length = 0;
    const token = Buffer.from('n1');
    peer.send(obsGet(0x2101, token, 0, false));
    const reg = await peer.next(byToken(token));
    expect(reg.confirmable || reg.ack).toBe(false);
    notifyAll('w1');
    const n1 = await peer.next(byToken(token));
    expect(n1.confirmable || n1.ack).toBe(false);
    expect(n1.messageId).not.toBe(reg.messageId);
    peer.send({ messageId: n1.messageId, reset: true, code: '0.00' });
    for (let i = 0; i < 100 && relationEnds.length === 0; i++) await sleep(20);
    expect(relationEnds).toEqual(['reset']);
    notifyAll('w2');
    expect((await peer.collect(300)).filter((p) => p.token.equals(token))).toEqual([]);
    await peer.close();
  });

  it('answers without Observe past the bound of relations per session', async () => {
    const peer = await connect('SN-conf-obs-max');
    for (let i = 0; i < 3; i++) peer.send(obsGet(0x2201 + i, Buffer.from([0x30 + i]), 0));
    const replies = [await peer.next(byMid(0x2201)), await peer.next(byMid(0x2202)), await peer.next(byMid(0x2203))];
    expect(replies.map((r) => option(r, 'Observe') !== undefined)).toEqual([true, true, false]);
    expect(replies[2]!.payload.toString()).toBe('plain');
    await peer.close();
  });

  it('ends every relation when the session ends, and sends nothing to it afterwards', async () => {
    const peer = await connect('SN-conf-obs-end');
    relationEnds.length = 0;
    peer.send(obsGet(0x2301, Buffer.from('e1'), 0));
    await peer.next(byMid(0x2301));
    peer.endSession();
    for (let i = 0; i < 50 && relationEnds.length === 0; i++) await sleep(20);
    expect(relationEnds).toEqual(['session-closed']);
    for (let i = 0; i < 50 && peer.datagramsAfterClose === 0; i++) await sleep(20); // the server's own close_notify in answer to ours
    const before = peer.datagramsAfterClose;
    notifyAll('after');
    await sleep(500);
    expect(peer.datagramsAfterClose).toBe(before);
    await peer.close();
  });
});

describe('block-wise (RFC 7959)', () => {
  let peer: DtlsCoapPeer;
  let mid = 0x3000;
  beforeAll(async () => {
    peer = await connect('SN-conf-block');
  });
  afterAll(() => peer.close());

  const put = (num: number, more: boolean, szx: number, payload: Buffer, extra: Array<{ name: string; value: Buffer }> = []) => {
    const messageId = ++mid;
    peer.send({
      messageId,
      token: Buffer.from([mid & 0xff, mid >> 8]), // a new token per block, as libcoap does
      confirmable: true,
      code: 'PUT',
      options: [{ name: 'Uri-Path', value: Buffer.from('upload') }, { name: 'Block1', value: block(num, more, szx) }, ...(extra as never[])],
      payload,
    });
    return peer.next(byMid(messageId));
  };

  it('answers 4.13 with Size1 to a block at NUM 2^20-1, allocating nothing for it', async () => {
    const before = process.memoryUsage().arrayBuffers;
    const res = await put(0xfffff, false, 6, Buffer.alloc(20, 1));
    expect(res.code).toBe('4.13');
    expect(uint(option(res, 'Size1'))).toBe(MAX_BODY);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('answers 4.08 to a block that does not follow the body received so far', async () => {
    expect((await put(3, true, 2, Buffer.alloc(64))).code).toBe('4.08');
    expect((await put(0, true, 2, Buffer.alloc(64))).code).toBe('2.31');
    expect((await put(2, true, 2, Buffer.alloc(64))).code).toBe('4.08');
  });

  it('assembles an upload from blocks with new tokens, echoing the last Block1', async () => {
    uploads.length = 0;
    const body = Buffer.alloc(2500, 0x5a);
    for (let num = 0; num * 1024 < body.length; num++) {
      const part = body.subarray(num * 1024, (num + 1) * 1024);
      const more = (num + 1) * 1024 < body.length;
      const res = await put(num, more, 6, part);
      expect(res.code).toBe(more ? '2.31' : '2.04');
      expect(unblock(option(res, 'Block1'))).toEqual({ num, more, szx: 6 });
    }
    expect(uploads).toEqual([2500]);
    expect(server.coap.block1Bytes).toBe(0); // nothing kept once the upload is complete
  });

  it('answers 4.13 with Size1 once an upload grows past the bound', async () => {
    let last: ParsedPacket | undefined;
    for (let num = 0; num < 10; num++) {
      last = await put(num, true, 6, Buffer.alloc(1024));
      if (last.code !== '2.31') break;
    }
    expect(last!.code).toBe('4.13');
    expect(uint(option(last!, 'Size1'))).toBe(MAX_BODY);
    expect((await put(0, false, 0, Buffer.alloc(10), [{ name: 'Size1', value: Buffer.from([0x01, 0, 0, 0]) }])).code).toBe('4.13');
  });

  it('tells the size of a body that fits one message when the request asks with Size2: 0 (RFC 7959 4)', async () => {
    const messageId = ++mid;
    peer.send({ messageId, token: Buffer.from([8]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('count') }, { name: 'Size2', value: Buffer.alloc(0) }] });
    const res = await peer.next(byMid(messageId));
    expect(uint(option(res, 'Size2'))).toBe(res.payload.length);
    expect(option(res, 'Block2')).toBeUndefined();
  });

  for (const szx of [0, 2, 4, 6]) {
    it(`serves a 3000-byte body with Block2 at SZX ${szx} (${16 << szx} bytes)`, async () => {
      const parts: Buffer[] = [];
      for (let num = 0; num < 200; num++) {
        const messageId = ++mid;
        peer.send({ messageId, token: Buffer.from([9, num]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('big') }, { name: 'Block2', value: block(num, false, szx) }] });
        const res = await peer.next(byMid(messageId));
        expect(res.code).toBe('2.05');
        const b = unblock(option(res, 'Block2'))!;
        expect(b.num).toBe(num);
        expect(b.szx).toBe(szx);
        expect(uint(option(res, 'Size2'))).toBe(BIG.length);
        parts.push(res.payload);
        if (!b.more) break;
      }
      expect(Buffer.concat(parts).equals(BIG)).toBe(true);
      expect(parts.length).toBe(Math.ceil(BIG.length / (16 << szx)));
    });
  }
});

describe('sessions', () => {
  it('starts a session replaced by a new handshake from the same address and port with empty CoAP state', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    relationEnds.length = 0;
    const first = await connect('SN-conf-reboot', sock);
    const req = { messageId: 0x4001, token: Buffer.from([0x41]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('count') }] };
    first.send(req);
    const a = await first.next(byMid(0x4001));
    first.send({ messageId: 0x4002, token: Buffer.from('r1'), confirmable: true, code: 'GET', options: [{ name: 'Observe', value: Buffer.alloc(0) }, { name: 'Uri-Path', value: Buffer.from('obs') }] });
    await first.next(byMid(0x4002));
    first.abandon(); // the device reboots: no close_notify, the server still holds the session
    expect(relationEnds).toEqual([]);

    const second = await connect('SN-conf-reboot', sock);
    second.send(req); // the same Message ID: a new session has no duplicate to answer it with
    const b = await second.next(byMid(0x4001));
    expect(Number(b.payload.toString())).toBe(Number(a.payload.toString()) + 1);
    expect(relationEnds).toEqual(['session-closed']); // the replaced session's relation ended with it
    await second.close();
    sock.close();
  });
});
