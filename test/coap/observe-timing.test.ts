/**
 * Observe timing rules (RFC 7641 4.5, 4.5.2) on the engine over the plain-UDP stand-in of DTLS,
 * with raw CoAP from coap-packet: a NON relation gets a CON notification once 24 h have passed
 * since the last CON; a CON notification never acknowledged ends the relation after
 * MAX_RETRANSMIT; a new notification while a CON is unacknowledged goes as CON in its place.
 */
import type dgram from 'node:dgram';
import { generate, parse, type ParsedPacket } from 'coap-packet';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { RouteResponse } from '../../src/coap/router.js';
import { Router } from '../../src/coap/router.js';
import { clientSocket, LOOPBACK, UdpEndpoint } from '../helpers/udp-endpoint.js';

let endpoint: UdpEndpoint;
const observers = new Set<RouteResponse>();
const ended: string[] = [];

beforeAll(async () => {
  const router = new Router();
  router.get('/obs', (_req, res) => {
    if (!res.observing) return res.end('plain');
    res.write('0');
    observers.add(res);
    res.onClose((reason) => {
      observers.delete(res);
      ended.push(reason);
    });
  });
  endpoint = await UdpEndpoint.open(router, { retransmit: { ackTimeoutMs: 20, maxRetransmit: 4 } });
});
afterAll(() => endpoint.close());

function notifyAll(v: string): void {
  for (const r of [...observers]) r.write(v);
}

async function client(serial: string): Promise<{ sock: dgram.Socket; inbox: ParsedPacket[] }> {
  const sock = await clientSocket();
  endpoint.accept(sock.address().port, serial);
  const inbox: ParsedPacket[] = [];
  sock.on('message', (m) => inbox.push(parse(m)));
  return { sock, inbox };
}

function register(sock: dgram.Socket, confirmable: boolean, token: Buffer): void {
  sock.send(generate({ messageId: 7, token, confirmable, code: 'GET', options: [{ name: 'Observe', value: Buffer.alloc(0) }, { name: 'Uri-Path', value: Buffer.from('obs') }] }), endpoint.port, LOOPBACK);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  for (let i = 0; i < ms / 10 && !cond(); i++) await sleep(10);
}

it('sends a NON relation a CON notification once 24 h have passed since the last CON', async () => {
  const { sock, inbox } = await client('SN-obs-24h');
  const token = Buffer.from('n24');
  register(sock, false, token);
  await until(() => inbox.length === 1);
  notifyAll('1');
  await until(() => inbox.length === 2);
  expect(inbox[1]!.confirmable).toBe(false);
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 24 * 3600_000 + 1000 });
  try {
    notifyAll('2');
    await until(() => inbox.length === 3);
    expect(inbox[2]!.confirmable).toBe(true);
    expect(inbox[2]!.payload.toString()).toBe('2');
    sock.send(generate({ messageId: inbox[2]!.messageId, ack: true, code: '0.00' }), endpoint.port, LOOPBACK);
    await until(() => endpoint.state(sock.address().port)!.outgoing.size === 0);
    notifyAll('3');
    // (inbox may also hold retransmissions of '2', sent before the ACK arrived: ACK_TIMEOUT is 20 ms here)
    await until(() => inbox.some((p) => p.payload.toString() === '3'));
    expect(inbox.find((p) => p.payload.toString() === '3')!.confirmable).toBe(false); // acknowledged: back to NON for another 24 h
  } finally {
    vi.useRealTimers();
    sock.close();
  }
});

it('ends a relation whose CON notification is never acknowledged, after MAX_RETRANSMIT', async () => {
  const { sock, inbox } = await client('SN-obs-timeout');
  ended.length = 0;
  register(sock, true, Buffer.from('c1'));
  await until(() => inbox.length === 1);
  notifyAll('1');
  await until(() => ended.length === 1);
  expect(ended).toEqual(['timeout']);
  const notifications = inbox.filter((p) => p.confirmable && p.payload.toString() === '1');
  expect(notifications.length).toBe(5); // the first transmission and 4 retransmissions
  expect(new Set(notifications.map((p) => p.messageId)).size).toBe(1);
  sock.close();
});

it('sends a new notification in place of an unacknowledged CON one, as CON, the old one no longer retransmitted', async () => {
  const { sock, inbox } = await client('SN-obs-replace');
  ended.length = 0;
  register(sock, false, Buffer.from('r1'));
  await until(() => inbox.length === 1);
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 25 * 3600_000 });
  try {
    notifyAll('con');
    notifyAll('next'); // the CON is not acknowledged yet: this one replaces it, as CON
  } finally {
    vi.useRealTimers();
  }
  await until(() => ended.length === 1);
  const con = inbox.filter((p) => p.confirmable);
  const first = con.filter((p) => p.payload.toString() === 'con');
  const second = con.filter((p) => p.payload.toString() === 'next');
  expect(first.length).toBe(1); // never retransmitted once replaced
  expect(second.length).toBe(5);
  expect(ended).toEqual(['timeout']);
  sock.close();
});
