import dgram from 'node:dgram';
import { readdirSync, readlinkSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DtlsCoapSocket } from '../../src/coap/transport.js';
import type { DroppedSend } from '../../src/coap/transport.js';
import { LOOPBACK, UdpEndpoint, clientSocket } from '../helpers/udp-endpoint.js';

function socketFds(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

/** The fd of the libuv handle inside a dgram.Socket: negative while nothing was ever bound. */
function handleFd(sock: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const handle = (sock as unknown as Record<symbol, { handle: { fd: number } | null }>)[state!]!.handle;
  return handle === null ? -1 : handle.fd;
}

function nextMessage(sock: dgram.Socket): Promise<[Buffer, dgram.RemoteInfo]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no datagram within 3 s')), 3000);
    sock.once('message', (msg, rinfo) => {
      clearTimeout(timer);
      resolve([msg, rinfo]);
    });
  });
}

describe('DtlsCoapSocket', () => {
  let endpoint: UdpEndpoint;
  let client: dgram.Socket;
  let socket: DtlsCoapSocket;

  beforeEach(async () => {
    endpoint = await UdpEndpoint.open();
    client = await clientSocket();
    endpoint.accept(client.address().port, 'SN-0001');
    socket = new DtlsCoapSocket(endpoint);
  });

  afterEach(async () => {
    await new Promise<void>((done) => socket.close(done));
    client.close();
    await endpoint.close();
  });

  it('is a dgram.Socket that never opens an fd, whatever node-coap calls on it', async () => {
    const before = socketFds();
    const extra = new DtlsCoapSocket(endpoint, { type: 'udp4' });
    expect(extra).toBeInstanceOf(dgram.Socket);
    let listening = false;
    await new Promise<void>((done) => extra.bind(5684, '0.0.0.0', () => done()));
    listening = true;
    extra.setRecvBufferSize(1 << 20);
    extra.setSendBufferSize(1 << 20);
    expect(extra.getRecvBufferSize()).toBe(1 << 20);
    extra.setBroadcast(true);
    extra.setTTL(64);
    extra.setMulticastLoopback(true);
    extra.addMembership('224.0.1.187');
    extra.ref();
    extra.unref();
    expect(extra.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 0 });
    expect(listening).toBe(true);
    expect(handleFd(extra)).toBeLessThan(0);
    expect(socketFds()).toBe(before);
    let closes = 0;
    await new Promise<void>((done) => extra.close(() => (++closes, done())));
    await new Promise<void>((done) => extra.close(() => (++closes, done())));
    expect(closes).toBe(2);
    expect(socketFds()).toBe(before);
  });

  it("re-emits the endpoint's data as 'message' with a full rinfo", async () => {
    const got = nextMessage(socket);
    client.send(Buffer.from('hello'), endpoint.port, LOOPBACK);
    const [msg, rinfo] = await got;
    expect(msg.toString()).toBe('hello');
    expect(rinfo).toEqual({ address: LOOPBACK, port: client.address().port, family: 'IPv4', size: 5 });
  });

  it('sends through the endpoint with both send() signatures and calls back asynchronously', async () => {
    const port = client.address().port;
    let called = false;
    const first = nextMessage(client);
    const bytes = await new Promise<number | undefined>((done, fail) => {
      socket.send(Buffer.from('one'), port, LOOPBACK, (err, n) => (err ? fail(err) : done(n)));
      expect(called).toBe(false);
      called = true;
    });
    expect(bytes).toBe(3);
    expect((await first)[0].toString()).toBe('one');
    const second = nextMessage(client);
    socket.send(Buffer.from('xxtwoxx'), 2, 3, port, LOOPBACK);
    expect((await second)[0].toString()).toBe('two');
  });

  it('keeps the order of many sends in one turn, and of sends made from their callbacks', async () => {
    const port = client.address().port;
    const got: string[] = [];
    const all = new Promise<void>((done) => {
      const onMessage = (m: Buffer) => {
        got.push(m.toString());
        if (got.length === 21) {
          client.off('message', onMessage);
          done();
        }
      };
      client.on('message', onMessage);
    });
    for (let i = 0; i < 20; i++) {
      socket.send(Buffer.from(`m${i}`), port, LOOPBACK, i === 0 ? () => socket.send(Buffer.from('from-callback'), port, LOOPBACK) : undefined);
    }
    await all;
    expect(got).toEqual([...Array.from({ length: 20 }, (_, i) => `m${i}`), 'from-callback']);
  });

  it('loses a datagram for a vanished session as UDP would: no callback error, a dropped event', async () => {
    let sync = true;
    const firstDrop = new Promise<DroppedSend>((done) => socket.once('dropped', done));
    const result = await new Promise<[Error | null, number | undefined]>((done) => {
      socket.send(Buffer.from('x'), 9, LOOPBACK, (e, bytes) => done([e, bytes]));
      sync = false;
    });
    expect(sync).toBe(false);
    expect(result).toEqual([null, 0]);
    expect(((await firstDrop).error as NodeJS.ErrnoException).code).toBe('ENOTCONN');
    const dropped = new Promise<DroppedSend>((done) => socket.once('dropped', done));
    socket.send(Buffer.from('x'), 0, 1, 9, LOOPBACK);
    expect((await dropped).port).toBe(9);
    expect(endpoint.sent).toHaveLength(0);
  });

  it('sends an address-less reply (node-coap error path) to the peer being dispatched', async () => {
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      const reply = Buffer.from(`re:${msg.toString()}`);
      socket.send(reply, 0, reply.length, rinfo.port);
    });
    const got = nextMessage(client);
    client.send(Buffer.from('ping'), endpoint.port, LOOPBACK);
    expect((await got)[0].toString()).toBe('re:ping');
  });

  it('refuses sends after close and ignores data after close', async () => {
    await new Promise<void>((done) => socket.close(done));
    let messages = 0;
    socket.on('message', () => messages++);
    const err = await new Promise<Error | null>((done) => socket.send(Buffer.from('x'), client.address().port, LOOPBACK, done));
    expect((err as NodeJS.ErrnoException).code).toBe('ERR_SOCKET_DGRAM_NOT_RUNNING');
    endpoint.emit('data', LOOPBACK, client.address().port, Buffer.from('late'));
    expect(messages).toBe(0);
  });
});
