/**
 * Connection ID (RFC 9146) on the real server in process, over loopback sockets, with the
 * project's client, whose CID code (src/dtls/client-cid.ts) is written apart from the server's:
 * records one side seals open on the other only if both read sections 4 and 5 the same way.
 *
 * NAT rebinding is a new client socket (a new source port) under the same session. Section 6:
 * the session moves only for a record that authenticates and is newer than the newest seen.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { CIPHER_SUITES } from '../../../src/dtls/ciphers/index.js';
import { DtlsClientSession } from '../../../src/dtls/client.js';
import { AlertDescription, AlertLevel } from '../../../src/dtls/constants.js';
import type { DtlsServerOptions } from '../../../src/dtls/server.js';
import type { DtlsSession } from '../../../src/dtls/session.js';
import { PskClientSession, RawUdpPeer, plainAlerts, readHelloVerifyCookie } from '../../helpers/dtls-raw.js';
import { startSoftwareDtlsServer, testPsk } from '../../helpers/software-dtls-server.js';
import { until } from '../../helpers/wait.js';

const TLS12_CID = 25;
const APPLICATION_DATA = 23;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(options: Partial<DtlsServerOptions> = {}) {
  const { server, port } = await startSoftwareDtlsServer(cleanups, options);
  const opened: DtlsSession[] = [];
  server.on('session-open', (s: DtlsSession) => opened.push(s));
  server.on('session-data', (s: DtlsSession, d: Buffer) => s.send(Buffer.concat([Buffer.from('echo:'), d])));
  return { server, port, opened };
}

async function socket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

/**
 * A device whose datagrams go out of `current` (switchable: a NAT rebinding), each one kept in
 * `sent`; `hold` keeps the next datagram back instead of sending it (a delayed record).
 */
async function device(serverPort: number, serial: string, connectionId: Buffer | undefined, cipherSuites?: number[]) {
  const d = {
    current: await socket(),
    sent: [] as Buffer[],
    held: [] as Buffer[],
    hold: false,
    received: [] as Buffer[],
    session: undefined as unknown as DtlsClientSession,
    async rebind() {
      d.current = await socket();
      d.current.on('message', (m) => d.session.onDatagram(m));
      return d.current.address().port;
    },
  };
  d.session = new DtlsClientSession({ identity: serial, psk: testPsk(serial), connectionId, cipherSuites }, (datagram) => {
    const copy = Buffer.from(datagram);
    d.sent.push(copy);
    if (d.hold) {
      d.held.push(copy);
      d.hold = false;
      return;
    }
    d.current.send(copy, serverPort, '127.0.0.1');
  });
  d.current.on('message', (m) => d.session.onDatagram(m));
  d.session.on('data', (x: Buffer) => d.received.push(x));
  d.session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    d.session.once('established', () => resolve());
    d.session.once('close', (reason: string) => reject(new Error(reason)));
    d.session.start();
  });
  return d;
}

async function roundTrip(d: Awaited<ReturnType<typeof device>>, text: string): Promise<void> {
  const before = d.received.length;
  d.session.send(Buffer.from(text));
  await until(() => d.received.length > before);
  expect(d.received.at(-1)!.toString()).toBe(`echo:${text}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Connection ID: negotiation and the record format on the wire', () => {
  it('a client offering a CID gets the server\'s 6-byte CID, and its tls12_cid records open on the server', async () => {
    const { server, port } = await start();
    const d = await device(port, 'SN-cid', Buffer.from('c1d0c1d0', 'hex'));
    const { write, read } = d.session.connectionIds;
    expect(write?.length).toBe(6); // the server's default cidLength
    expect(read?.toString('hex')).toBe('c1d0c1d0');
    expect(server.cidSessionCount).toBe(1);
    await roundTrip(d, 'hello');
    // What the client sent is section 4's record: outer type 25, the server's CID after the sequence number.
    const last = d.sent.at(-1)!;
    expect(last[0]).toBe(TLS12_CID);
    expect(last.subarray(11, 17).equals(write!)).toBe(true);
  });

  // Each suite hands section 5's additional data its own `length` (AEAD and MAC-then-encrypt:
  // the inner plaintext; encrypt-then-MAC: IV and ciphertext): both ends must agree for each.
  it.each([...CIPHER_SUITES.values()].map((s) => [s.name, s.id] as const))('%s carries tls12_cid records both ways', async (_name, id) => {
    const { port } = await start({ cipherSuites: [id], allowCbcWithoutEncryptThenMac: true });
    const d = await device(port, `SN-suite-${id}`, Buffer.from('77', 'hex'), [id]);
    const replies: Buffer[] = [];
    d.current.on('message', (m) => replies.push(m));
    await roundTrip(d, 'suite');
    expect(d.sent.at(-1)![0]).toBe(TLS12_CID);
    expect(replies.at(-1)![0]).toBe(TLS12_CID);
  });

  it('a zero-length client CID: the client sends the server\'s CID, the server answers in the plain format', async () => {
    const { port } = await start();
    const d = await device(port, 'SN-cid0', Buffer.alloc(0));
    expect(d.session.connectionIds.write?.length).toBe(6);
    expect(d.session.connectionIds.read).toBeUndefined();
    const replies: Buffer[] = [];
    d.current.on('message', (m) => replies.push(m));
    await roundTrip(d, 'plain back');
    expect(d.sent.at(-1)![0]).toBe(TLS12_CID);
    expect(replies.at(-1)![0]).toBe(APPLICATION_DATA);
  });

  it('a client offering a CID to a server with cidLength 0 completes a full handshake without CID', async () => {
    const { server, port } = await start({ cidLength: 0 });
    const d = await device(port, 'SN-nocid', Buffer.from('abcd', 'hex'));
    expect(d.session.connectionIds).toEqual({ write: undefined, read: undefined });
    expect(server.cidSessionCount).toBe(0);
    await roundTrip(d, 'no cid');
    expect(d.sent.at(-1)![0]).toBe(APPLICATION_DATA);
  });

  it('a client that offers no CID gets plain records both ways', async () => {
    const { server, port } = await start();
    const d = await device(port, 'SN-plain', undefined);
    expect(server.cidSessionCount).toBe(0);
    await roundTrip(d, 'plain');
    expect(d.sent.at(-1)![0]).toBe(APPLICATION_DATA);
  });
});

describe('Connection ID: peer address update (RFC 9146 section 6)', () => {
  it('the same session continues from a new source port, without a new handshake', async () => {
    const { server, port, opened } = await start();
    const moves: Array<{ from: string; to: number }> = [];
    server.on('session-address', (s: DtlsSession, previous: { address: string; port: number }) => moves.push({ from: `${previous.address}:${previous.port}`, to: s.port }));
    const d = await device(port, 'SN-nat', Buffer.from('0102', 'hex'));
    const firstPort = d.current.address().port;
    await roundTrip(d, 'before');
    expect(opened[0]!.port).toBe(firstPort);
    const newPort = await d.rebind();
    await roundTrip(d, 'after');
    expect(server.stats.handshakesOk).toBe(1);
    expect(opened).toHaveLength(1);
    expect(opened[0]!.port).toBe(newPort);
    expect(server.stats.addressUpdates).toBe(1);
    expect(moves).toEqual([{ from: `127.0.0.1:${firstPort}`, to: newPort }]);
    // The old address no longer names the session; the new one does.
    expect(server.peer('127.0.0.1', firstPort)).toBeUndefined();
    expect(server.peer('127.0.0.1', newPort)?.identity).toBe('SN-nat');
  });

  it('a record from a new address that does not authenticate changes nothing', async () => {
    const { server, port, opened } = await start();
    const d = await device(port, 'SN-spoof', Buffer.from('0102', 'hex'));
    const realPort = d.current.address().port;
    await roundTrip(d, 'real');
    const forged = Buffer.from(d.sent.at(-1)!);
    forged.writeUIntBE(forged.readUIntBE(5, 6) + 10, 5, 6); // newer sequence number: AD no longer matches
    const attacker = await socket();
    const atAttacker: Buffer[] = [];
    attacker.on('message', (m) => atAttacker.push(m));
    const tampered = Buffer.from(d.sent.at(-1)!);
    tampered[tampered.length - 1]! ^= 0x01; // a flipped tag bit
    for (const bad of [forged, tampered]) attacker.send(bad, port, '127.0.0.1');
    await until(() => server.stats.datagrams >= 2 + countSent(d));
    await sleep(50);
    expect(opened[0]!.port).toBe(realPort);
    expect(server.stats.addressUpdates).toBe(0);
    expect(atAttacker).toHaveLength(0);
    await roundTrip(d, 'still here');
  });

  it('a replayed old record from a new address changes nothing', async () => {
    const { server, port, opened } = await start();
    const d = await device(port, 'SN-replay', Buffer.from('0102', 'hex'));
    const realPort = d.current.address().port;
    await roundTrip(d, 'one');
    const attacker = await socket();
    const atAttacker: Buffer[] = [];
    attacker.on('message', (m) => atAttacker.push(m));
    // An exact copy of a record the server already read: the replay window drops it.
    attacker.send(d.sent.at(-1)!, port, '127.0.0.1');
    // A record the server never saw (captured and held on the way), replayed after a newer one
    // arrived: it authenticates and is fresh for the window, but it is not newer than the
    // newest, so it moves nothing; its request is answered at the session's address.
    d.hold = true;
    d.session.send(Buffer.from('held'));
    const held = d.held[0]!;
    await roundTrip(d, 'two');
    attacker.send(held, port, '127.0.0.1');
    await until(() => d.received.length === 3);
    expect(d.received.at(-1)!.toString()).toBe('echo:held');
    expect(server.stats.addressUpdatesRejected).toBe(1);
    expect(server.stats.addressUpdates).toBe(0);
    expect(opened[0]!.port).toBe(realPort);
    expect(atAttacker).toHaveLength(0);
  });

  it('an address that has not proven itself gets nothing larger than three times what it sent', async () => {
    const { server, port } = await start();
    const big = Buffer.alloc(1000, 0x61);
    server.removeAllListeners('session-data');
    server.on('session-data', (s: DtlsSession, data: Buffer) => s.send(data.toString() === 'big' ? big : Buffer.from('small')));
    const d = await device(port, 'SN-amp', Buffer.from('0102', 'hex'));
    await d.rebind();
    // One ~40-byte record from the new address: a 1000-byte reply does not fit 3 × 40, a small one does.
    d.session.send(Buffer.from('big'));
    await until(() => server.stats.heldForUnprovenAddress === 1);
    d.session.send(Buffer.from('tiny'));
    await until(() => d.received.length === 1);
    expect(d.received[0]!.toString()).toBe('small');
    // That newer record after an answer proved the address: the large reply now goes out.
    d.session.send(Buffer.from('big'));
    await until(() => d.received.length === 2);
    expect(d.received[1]!.length).toBe(1000);
  });
});

function countSent(d: { sent: Buffer[] }): number {
  return d.sent.length;
}

describe('Connection ID: a malformed offer', () => {
  it('a connection_id extension whose length byte lies gets decode_error and no handshake state', async () => {
    const { server, port } = await start();
    const p = await RawUdpPeer.open(port);
    cleanups.push(() => p.close());
    const s = new PskClientSession({ extensions: [{ type: 54, data: Buffer.from([5, 1]) }] });
    p.send(s.firstHello());
    const cookie = readHelloVerifyCookie((await p.recv())!)!;
    p.send(s.helloWithCookie(cookie));
    const reply = await p.recvUntil((dg) => plainAlerts(dg).length > 0, 3000);
    expect(reply && plainAlerts(reply)).toContainEqual([AlertLevel.fatal, AlertDescription.decode_error]);
    expect(server.handshakeCount).toBe(0);
  });
});

describe('Connection ID: the path of the newest record (PeerAddress.via, for node forwarding)', () => {
  it("a session's replies take the path its newest authenticated record came by; an older one moves nothing", async () => {
    const { server, port } = await start();
    const sentVia: Array<{ path: number; address: string; port: number; datagram: Buffer }> = [];
    expect(server.routeCids({
      route: 0, routeBytes: 2, secret: Buffer.alloc(32, 3), // test secret only
      foreign: () => false,
      via: (path, datagram, address, p) => sentVia.push({ path, address, port: p, datagram: Buffer.from(datagram) }),
    })).toBe(true);
    const d = await device(port, 'SN-via', Buffer.alloc(0));
    await roundTrip(d, 'direct'); // no path: from the socket
    expect(sentVia).toEqual([]);
    const home = d.current.address().port;
    const sealed = (text: string) => {
      d.hold = true;
      d.session.send(Buffer.from(text));
      return d.held.shift()!;
    };
    const older = sealed('older');
    const newer = sealed('newer');
    // The newer record arrives by path 7 from the device's own address: the reply goes by path 7.
    server.onDatagram(newer, '127.0.0.1', home, true, 7);
    expect(sentVia.map((s) => [s.path, s.address, s.port])).toEqual([[7, '127.0.0.1', home]]);
    // The older one, by path 9: answered, but by the newest record's path, 7.
    server.onDatagram(older, '127.0.0.1', home, true, 9);
    expect(sentVia.map((s) => s.path)).toEqual([7, 7]);
    expect(server.stats.addressUpdates).toBe(0); // the address itself never changed
    // What went by the path is the session's record: the device reads it.
    for (const s of sentVia) d.session.onDatagram(s.datagram);
    expect(d.received.slice(-2).map(String)).toEqual(['echo:newer', 'echo:older']);
    // A newer record straight from the device: replies leave from the socket again.
    await roundTrip(d, 'direct again');
    expect(sentVia).toHaveLength(2);
  });
});
