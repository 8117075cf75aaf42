/**
 * The bound on all unfinished Block1 uploads together (src/coap/block.ts Block1Budget): past it
 * a block that would add bytes gets 5.03, and the bytes come back when an upload finishes, fails
 * or its session ends. Raw CoAP built by coap-packet over the plain-UDP stand-in of DTLS.
 */
import type dgram from 'node:dgram';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Router } from '../../src/coap/router.js';
import { block } from '../helpers/coap-dtls-peer.js';
import { clientSocket, LOOPBACK, UdpEndpoint } from '../helpers/udp-endpoint.js';

let endpoint: UdpEndpoint;
let a: dgram.Socket;
let b: dgram.Socket;
let mid = 0x100;

beforeAll(async () => {
  const router = new Router();
  router.put('/up', (req, res) => {
    res.code = '2.04';
    res.end(String(req.payload.length));
  });
  endpoint = await UdpEndpoint.open(router, { maxBlock1Total: 2048 });
  a = await clientSocket();
  b = await clientSocket();
  endpoint.accept(a.address().port, 'SN-budget-a');
  endpoint.accept(b.address().port, 'SN-budget-b');
});
afterAll(async () => {
  a.close();
  b.close();
  await endpoint.close();
});

function put(sock: dgram.Socket, num: number, more: boolean): Promise<ParsedPacket> {
  const messageId = ++mid;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no reply')), 2000);
    const onMessage = (m: Buffer) => {
      const p = parse(m);
      if (p.messageId !== messageId) return;
      clearTimeout(t);
      sock.off('message', onMessage);
      resolve(p);
    };
    sock.on('message', onMessage);
    const datagram = generate({ messageId, token: Buffer.from([num]), confirmable: true, code: 'PUT', options: [{ name: 'Uri-Path', value: Buffer.from('up') }, { name: 'Block1', value: block(num, more, 6) }], payload: Buffer.alloc(more ? 1024 : 10, 0x33) });
    sock.send(datagram, endpoint.port, LOOPBACK);
  });
}

it('refuses a block past the total with 5.03, and gives the bytes back when a session ends', async () => {
  expect((await put(a, 0, true)).code).toBe('2.31');
  expect((await put(a, 1, true)).code).toBe('2.31');
  expect(endpoint.coap.block1Bytes).toBe(2048);
  expect((await put(b, 0, true)).code).toBe('5.03');
  endpoint.end(a.address().port);
  expect(endpoint.coap.block1Bytes).toBe(0);
  expect((await put(b, 0, true)).code).toBe('2.31');
  const done = await put(b, 1, false);
  expect(done.code).toBe('2.04');
  expect(done.payload.toString()).toBe('1034');
  expect(endpoint.coap.block1Bytes).toBe(0);
});
