/**
 * Session export and import (graceful restart's DTLS layer): sessions established with server
 * A go on with server B, a second server on the same port, without a new handshake, for every
 * suite; a record already seen by A is refused by B (the replay window came along); B's
 * records continue A's sequence numbers (the client's own replay window would drop a repeat).
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DtlsClientSession } from '../../src/dtls/client.js';
import { encodeSessions, exportServerSessions, importServerSessions, importSession, parseSessions } from '../../src/dtls/session-export.js';
import { DtlsServer } from '../../src/dtls/server.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import { LOOPBACK } from '../helpers/ports.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key
const pskFor = (serial: string) => deriveSoftware(MASTER, Buffer.from(serial, 'utf8'));
const SUITES = [0xc0a8, 0xc0a4, 0x00a8, 0xccac, 0x00ae];

interface TestClient {
  session: DtlsClientSession;
  socket: dgram.Socket;
  /** Every datagram the client sent, in order. */
  sent: Buffer[];
  port: number;
}

async function newServer(port: number): Promise<{ server: CoapPskServer; port: number }> {
  const keys = new SoftwareResolver({ keys: [{ label: 'k1', master: MASTER }], warn: () => {} });
  const server = await createServer({ keys });
  const bound = await server.listen(port, LOOPBACK);
  return { server, port: bound.port };
}

async function client(serverPort: number, serial: string, suite: number): Promise<TestClient> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(serverPort, LOOPBACK, resolve));
  const sent: Buffer[] = [];
  const session = new DtlsClientSession({ identity: serial, psk: pskFor(serial), cipherSuites: [suite] }, (d) => {
    sent.push(d);
    socket.send(d);
  });
  socket.on('message', (m) => session.onDatagram(m));
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('handshake timeout')), 5000);
    session.once('established', () => {
      clearTimeout(t);
      resolve();
    });
    session.start();
  });
  return { session, socket, sent, port: socket.address().port };
}

function request(c: TestClient, mid: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), 3000);
    c.session.once('data', (d: Buffer) => {
      clearTimeout(t);
      const r = parseReply(d);
      resolve(r && r.messageId === mid ? `${r.code} ${r.payload.toString()}` : 'unexpected reply');
    });
    c.session.send(coapGet(mid, ['whoami']));
  });
}

describe('DTLS session export / import', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('sessions of every suite go on with a second server on the same port, no new handshake', async () => {
    const a = await newServer(0);
    cleanup.push(() => a.server.close());
    const clients: TestClient[] = [];
    for (const suite of SUITES) clients.push(await client(a.port, `SN-EXP-${suite.toString(16)}`, suite));
    cleanup.push(() => clients.forEach((c) => c.socket.close()));
    for (const [i, c] of clients.entries()) expect(await request(c, 100 + i)).toBe(`2.05 SN-EXP-${SUITES[i]!.toString(16)}`);

    const { bytes, count } = exportServerSessions(a.server.dtls);
    expect(count).toBe(SUITES.length);
    await a.server.dtls.detach();
    const b = await newServer(a.port);
    cleanup.push(() => b.server.close());
    expect(importServerSessions(b.server.dtls, bytes)).toBe(SUITES.length);
    bytes.fill(0);

    for (const [i, c] of clients.entries()) expect(await request(c, 200 + i)).toBe(`2.05 SN-EXP-${SUITES[i]!.toString(16)}`);
    expect(b.server.dtls.stats.handshakesOk).toBe(0);
    expect(b.server.dtls.sessionCount).toBe(SUITES.length);
  });

  it('a record the first server already read is refused by the second (replay window handed over)', async () => {
    const a = await newServer(0);
    cleanup.push(() => a.server.close());
    const c = await client(a.port, 'SN-REPLAY', 0xc0a8);
    cleanup.push(() => { c.socket.close(); });
    expect(await request(c, 7)).toBe('2.05 SN-REPLAY');
    const recorded = c.sent[c.sent.length - 1]!;
    const { bytes } = exportServerSessions(a.server.dtls);
    await a.server.dtls.detach();
    const b = await newServer(a.port);
    cleanup.push(() => b.server.close());
    importServerSessions(b.server.dtls, bytes);

    let answered = 0;
    c.session.on('data', () => answered++);
    b.server.dtls.onDatagram(recorded, LOOPBACK, c.port);
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(0);
    c.session.removeAllListeners('data');
    // The session itself still works, so the silence above was the window, not a dead session.
    expect(await request(c, 8)).toBe('2.05 SN-REPLAY');
  });

  const session = {
    address: '127.0.0.1', port: 5683, cipherSuite: 0xc0a8, extendedMasterSecret: true, encryptThenMac: false,
    masterSecret: Buffer.alloc(48, 1), clientRandom: Buffer.alloc(32, 2), serverRandom: Buffer.alloc(32, 3),
    identity: Buffer.from('SN1'), pskTag: 'k1', lastActivity: 1_700_000_000_000,
    records: { readEpoch: 1, writeEpoch: 1, writeSeq: 7, window: { highest: 9, bits: [0x3ff, 0] as [number, number] } },
  };

  it('format 1 (of the previous version) is still read; unknown formats and malformed state are refused, and a CID in format 1', () => {
    expect(parseSessions(Buffer.from([3, 0, 0, 0, 0]))).toBeUndefined();
    expect(parseSessions(Buffer.from([1, 0, 0, 0, 1]))).toBeUndefined();
    expect(parseSessions(Buffer.from([1, 0, 0, 0, 0]))).toEqual([]);
    expect(parseSessions(Buffer.from([2, 0, 0, 0, 0]))).toEqual([]);
    const bytes = encodeSessions([session], 1);
    expect(parseSessions(bytes)).toEqual([{ ...session, appState: undefined }]);
    // The same session with a one-byte own CID (RFC 9146): the slot's length byte, then the CID.
    const body = bytes.subarray(7);
    const withCid = Buffer.concat([bytes.subarray(0, 5), Buffer.from([0, body.length + 1]), body.subarray(0, body.length - 2), Buffer.from([1, 0xaa, 0])]);
    expect(body.length + 1).toBeLessThan(256);
    expect(parseSessions(withCid)).toBeUndefined();
    // The same edit with an empty CID again parses: the refusal above is the CID's.
    const without = Buffer.concat([bytes.subarray(0, 5), Buffer.from([0, body.length]), body.subarray(0, body.length - 2), Buffer.from([0, 0])]);
    expect(parseSessions(without)).toEqual([{ ...session, appState: undefined }]);
  });

  it('a CID session is imported only at this server\'s CID length and for a CID not yet taken', () => {
    const server = new DtlsServer({ pskLookup: async () => ({ refused: 'unknown_psk_identity' as const }) });
    const own = Buffer.from('a1a2a3a4a5a6', 'hex'); // 6 bytes: the default dtls.cidLength
    const copy = () => ({ ...session, masterSecret: Buffer.alloc(48, 1) });
    expect(importSession(server, { ...copy(), ownCid: Buffer.from('a1a2a3a4', 'hex') })).toBeUndefined();
    const conn = importSession(server, { ...copy(), ownCid: own, peerCid: Buffer.from('b1b2', 'hex') });
    expect(conn?.cid).toEqual({ readCid: own, writeCid: Buffer.from('b1b2', 'hex') });
    expect(server.cidSessionCount).toBe(1);
    expect(importSession(server, { ...copy(), port: 5684, ownCid: own })).toBeUndefined();
    expect(server.sessionCount).toBe(1);
  });

  it('format 2 is format 1 with a 24-bit session length, the CIDs in their slots and the opaque app_state at the end', () => {
    const one = encodeSessions([session], 1);
    const body = one.subarray(7);
    const appState = Buffer.from('coap state', 'utf8');
    const two = encodeSessions([{ ...session, appState }], 2);
    const length = body.length + 3 + appState.length;
    expect(two).toEqual(Buffer.concat([Buffer.from([2, 0, 0, 0, 1, 0, length >> 8, length & 0xff]), body, Buffer.from([0, 0, appState.length]), appState]));
    expect(parseSessions(two)).toEqual([{ ...session, appState }]);
    // RFC 9146: the CIDs take their slots (length byte, CID) in format 2.
    const withCids = encodeSessions([{ ...session, ownCid: Buffer.from('a1a2a3a4a5a6', 'hex'), peerCid: Buffer.from('b1b2', 'hex'), appState }], 2);
    const cidLength = length + 6 + 2;
    expect(withCids).toEqual(Buffer.concat([Buffer.from([2, 0, 0, 0, 1, 0, cidLength >> 8, cidLength & 0xff]), body.subarray(0, body.length - 2),
      Buffer.from('06a1a2a3a4a5a602b1b2', 'hex'), Buffer.from([0, 0, appState.length]), appState]));
    expect(parseSessions(withCids)).toEqual([{ ...session, ownCid: Buffer.from('a1a2a3a4a5a6', 'hex'), peerCid: Buffer.from('b1b2', 'hex'), appState }]);
    // A truncated app_state is malformed, not a shorter state.
    expect(parseSessions(Buffer.concat([two.subarray(0, 7), Buffer.from([length - 1]), two.subarray(8, two.length - 1)]))).toBeUndefined();
  });
});
