/**
 * RFC 5246 7.2.2: "any connection terminated with a fatal alert MUST NOT be resumed", whichever
 * side sent the alert; a connection that ends otherwise (close_notify, idle timeout) stays
 * resumable. The real DtlsServer on loopback, driven by the raw step-by-step client
 * (test/helpers/dtls-raw.ts) with extended master secret, so that the server caches each full
 * handshake's session under a fresh session ID. "Not resumed" is what the next ClientHello that
 * offers the ID gets: a ServerHello with another session ID, a full handshake and a key lookup.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeAlert } from '../../../src/dtls/alert.js';
import { AlertDescription, AlertLevel, ContentType } from '../../../src/dtls/constants.js';
import { encodeFinished } from '../../../src/dtls/handshake/finished.js';
import { DtlsServer, type DtlsServerOptions, type HandshakeEvent } from '../../../src/dtls/server.js';
import { deriveSoftware } from '../../../src/keys/derive.js';
import { EMS, PskClientSession, RawUdpPeer, fullHandshake, readHelloVerifyCookie } from '../../helpers/dtls-raw.js';
import { until } from '../../helpers/wait.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
const psk = (serial: string) => deriveSoftware(MASTER, Buffer.from(serial));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(options: Partial<DtlsServerOptions> = {}) {
  const lookups: string[] = [];
  const server = new DtlsServer({
    pskLookup: async (id) => {
      lookups.push(id.toString());
      return [{ psk: psk(id.toString()), tag: 'k' }];
    },
    ...options,
  });
  cleanups.push(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  const events: HandshakeEvent[] = [];
  server.on('handshake', (e: HandshakeEvent) => events.push(e));
  const kinds = () => events.map((e) => (e.result === 'ok' ? e.kind : `failed:${e.reason}`));
  return { server, port, lookups, kinds };
}

async function peer(port: number) {
  const p = await RawUdpPeer.open(port);
  cleanups.push(() => p.close());
  return p;
}

/** A full handshake with EMS; the session ID and master secret the server gave the session. */
async function cachedSession(p: RawUdpPeer, identity: string) {
  const s = await fullHandshake(p, identity, psk(identity), 5000, { extensions: [EMS] });
  expect(s).toBeDefined();
  expect(s!.serverSessionId).toHaveLength(32);
  return { s: s!, id: s!.serverSessionId!, master: s!.sessionMasterSecret! };
}

/**
 * Offers session `id` in a cookie-verified ClientHello. 'resumed': the server answered with the
 * abbreviated flight under the session's keys (its ServerHello echoes `id`); 'full': ServerHello
 * and ServerHelloDone, with the ServerHello's session ID in `newId`.
 */
async function offer(p: RawUdpPeer, id: Buffer, master: Buffer, waitMs = 3000) {
  const s = new PskClientSession({ sessionId: id, extensions: [EMS] });
  p.send(s.firstHello());
  const hvr = await p.recvUntil((d) => readHelloVerifyCookie(d) !== undefined, 3000);
  expect(hvr).toBeDefined();
  p.send(s.helloWithCookie(readHelloVerifyCookie(hvr!)!));
  let kind: 'resumed' | 'full' | undefined;
  await p.recvUntil((d) => {
    if (s.onFlight4(d)) kind = 'full';
    else if (s.serverSessionId?.equals(id) && s.onAbbreviatedFlight(d, master)) kind = 'resumed';
    return kind !== undefined;
  }, waitMs);
  return { s, kind, newId: s.serverSessionId };
}

/** The next offer of `id` resumes: the abbreviated handshake, completed (our Finished), makes a session. */
async function expectResumed(p: RawUdpPeer, id: Buffer, master: Buffer, server: DtlsServer) {
  const sessionsBefore = server.sessionCount;
  const next = await offer(p, id, master);
  expect(next.kind).toBe('resumed');
  p.send(next.s.changeCipherSpecAndFinished());
  await until(() => server.sessionCount === sessionsBefore + 1 && server.handshakeCount === 0, 3000);
  return next.s;
}

/** After a full ServerHello: the rest of the full handshake, with the key lookup it costs. */
async function finishFull(p: RawUdpPeer, s: PskClientSession, identity: string) {
  p.send(s.clientKeyExchange(Buffer.from(identity)));
  s.deriveKeys(psk(identity));
  p.send(s.changeCipherSpecAndFinished());
  expect(await p.recvUntil((d) => s.open(d).some((r) => r.type === ContentType.handshake), 3000)).toBeDefined();
}

/** What the next ClientHello offering `id` gets must be a full handshake with a new session ID. */
async function expectNotResumed(p: RawUdpPeer, id: Buffer, master: Buffer, identity: string) {
  const next = await offer(p, id, master);
  expect(next.kind).toBe('full');
  expect(next.newId).toHaveLength(32);
  expect(next.newId!.equals(id)).toBe(false);
  await finishFull(p, next.s, identity);
}

describe('RFC 5246 7.2.2: a session that ended with a fatal alert is not resumed by its ID', () => {
  it('the server ends it with record_overflow (its own fatal alert): the next offer of the ID gets a full handshake', async () => {
    const { server, port, lookups, kinds } = await start();
    const p = await peer(port);
    const { s, id, master } = await cachedSession(p, 'SN-overflow');
    p.send(s.applicationData(Buffer.alloc(2 ** 14 + 1, 0x41)));
    const d = await p.recvUntil((dg) => s.open(dg).some((r) => r.type === ContentType.alert), 2000);
    expect(s.open(d!).find((r) => r.type === ContentType.alert)!.plaintext).toEqual(Buffer.from([AlertLevel.fatal, AlertDescription.record_overflow]));
    await until(() => server.sessionCount === 0);
    await expectNotResumed(p, id, master, 'SN-overflow');
    expect(lookups).toEqual(['SN-overflow', 'SN-overflow']);
    await until(() => kinds().length === 2);
    expect(kinds()).toEqual(['full', 'full']);
  });

  it('a session resumed by ID that the server ends with record_overflow is not resumed again', async () => {
    const { server, port, lookups, kinds } = await start();
    const p = await peer(port);
    const { id, master } = await cachedSession(p, 'SN-overflow-2');
    const q = await peer(port);
    const resumed = await expectResumed(q, id, master, server);
    q.send(resumed.applicationData(Buffer.alloc(2 ** 14 + 1, 0x41)));
    await until(() => server.sessionCount === 1);
    await expectNotResumed(q, id, master, 'SN-overflow-2');
    expect(kinds()).toEqual(['full', 'resumed_id', 'full']);
    expect(lookups).toHaveLength(2);
  });

  it('an abbreviated handshake whose Finished does not verify (decrypt_error) removes the session it tried to resume', async () => {
    const { server, port, lookups, kinds } = await start();
    const p = await peer(port);
    const { id, master } = await cachedSession(p, 'SN-finished');
    const q = await peer(port);
    const attempt = await offer(q, id, master);
    expect(attempt.kind).toBe('resumed');
    // Under the session's keys, so the record authenticates; its verify_data is wrong.
    q.send(attempt.s.changeCipherSpecAndFinished({ finishedBody: encodeFinished({ verifyData: Buffer.alloc(12, 0xee) }) }));
    const alert = await q.recvUntil((dg) => attempt.s.open(dg).some((r) => r.type === ContentType.alert), 3000);
    expect(attempt.s.open(alert!).find((r) => r.type === ContentType.alert)!.plaintext).toEqual(Buffer.from([AlertLevel.fatal, AlertDescription.decrypt_error]));
    await until(() => kinds().length === 2);
    expect(kinds()).toEqual(['full', 'failed:finished_mismatch']);
    const r = await peer(port);
    await expectNotResumed(r, id, master, 'SN-finished');
    expect(lookups).toHaveLength(2);
    expect(server.sessionCount).toBe(2); // the first session and the new full one
  });

  it('the peer ends it with a fatal alert: the next offer of the ID gets a full handshake', async () => {
    const { server, port, lookups } = await start();
    const p = await peer(port);
    const { s, id, master } = await cachedSession(p, 'SN-peer-fatal');
    p.send(s.sealRecord(ContentType.alert, encodeAlert(AlertLevel.fatal, AlertDescription.internal_error)));
    await until(() => server.sessionCount === 0);
    await expectNotResumed(p, id, master, 'SN-peer-fatal');
    expect(lookups).toHaveLength(2);
  });
});

describe('a session that ended without a fatal alert stays resumable', () => {
  it('after close_notify', async () => {
    const { server, port, lookups, kinds } = await start();
    const p = await peer(port);
    const { s, id, master } = await cachedSession(p, 'SN-close');
    p.send(s.sealRecord(ContentType.alert, encodeAlert(AlertLevel.warning, AlertDescription.close_notify)));
    await until(() => server.sessionCount === 0);
    await expectResumed(p, id, master, server);
    expect(kinds()).toEqual(['full', 'resumed_id']);
    expect(lookups).toHaveLength(1);
  });

  it('after an idle timeout (the server sends close_notify)', async () => {
    const { server, port, lookups, kinds } = await start({ idleTimeoutMs: 200 });
    const p = await peer(port);
    const { id, master } = await cachedSession(p, 'SN-idle');
    await until(() => server.sessionCount === 0, 4000);
    await expectResumed(p, id, master, server);
    expect(kinds()).toEqual(['full', 'resumed_id']);
    expect(lookups).toHaveLength(1);
  });

  it('after an abbreviated handshake that a stranger offering the ID ends before proving the session (plaintext fatal alert)', async () => {
    // The session ID travels in the clear (RFC 5246 F.1.4): repeating it proves nothing, so the
    // connection it starts is not the session's until a record authenticates under its keys.
    const { server, port, lookups, kinds } = await start();
    const p = await peer(port);
    const { id, master } = await cachedSession(p, 'SN-stranger');
    const stranger = await peer(port);
    const attempt = await offer(stranger, id, Buffer.alloc(48), 1000); // no master secret: it reads nothing
    expect(attempt.kind).toBeUndefined();
    expect(attempt.newId).toEqual(id);
    stranger.send(attempt.s.plain(ContentType.alert, encodeAlert(AlertLevel.fatal, AlertDescription.handshake_failure)));
    await until(() => kinds().length === 2);
    expect(kinds()).toEqual(['full', 'failed:peer_alert']);
    const owner = await peer(port);
    await expectResumed(owner, id, master, server);
    expect(kinds()).toEqual(['full', 'failed:peer_alert', 'resumed_id']);
    expect(lookups).toHaveLength(1);
  });
});
