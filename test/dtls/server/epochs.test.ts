/**
 * Issue 11: after the handshake no unauthenticated datagram ends or disturbs a session, and an
 * honest handshake survives forged records. The real DtlsServer on loopback, driven by the raw
 * step-by-step client (test/helpers/dtls-raw.ts), whose socket plays the spoofer too: a record
 * it sends comes from the device's own address and port, as a spoofed one would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AlertDescription, AlertLevel, ContentType, HandshakeType } from '../../../src/dtls/constants.js';
import { encodeAlert } from '../../../src/dtls/alert.js';
import { encodeHandshake } from '../../../src/dtls/handshake/header.js';
import { encodeRecord } from '../../../src/dtls/record.js';
import { DtlsServer, type DtlsServerOptions, type HandshakeEvent } from '../../../src/dtls/server.js';
import type { DtlsSession } from '../../../src/dtls/session.js';
import { deriveSoftware } from '../../../src/keys/derive.js';
import { CCM_8, RawUdpPeer, fullHandshake, handshakeRecord, plainAlerts, readHelloVerifyCookie, toFlight4, PskClientSession, clientHelloBody } from '../../helpers/dtls-raw.js';
import { until } from '../../helpers/wait.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
const psk = (serial: string) => deriveSoftware(MASTER, Buffer.from(serial));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(options: Partial<DtlsServerOptions> = {}) {
  const server = new DtlsServer({ pskLookup: async (id) => [{ psk: psk(id.toString()), tag: 'k' }], ...options });
  cleanups.push(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  server.on('session-data', (session: DtlsSession, data: Buffer) => session.send(Buffer.concat([Buffer.from('echo:'), data])));
  const events: HandshakeEvent[] = [];
  server.on('handshake', (e: HandshakeEvent) => events.push(e));
  return { server, port, events };
}

async function peer(port: number) {
  const p = await RawUdpPeer.open(port);
  cleanups.push(() => p.close());
  return p;
}

/** Sends `data` as application data and waits (bounded) for the echo. */
async function echoes(p: RawUdpPeer, s: PskClientSession, data: string): Promise<boolean> {
  p.send(s.applicationData(Buffer.from(data)));
  const d = await p.recvUntil((dg) => s.open(dg).some((r) => r.type === ContentType.application_data && r.plaintext.toString() === `echo:${data}`), 2000);
  return d !== undefined;
}

const junkKeys = () => CCM_8.createProtection({ macKey: Buffer.alloc(0), encKey: Buffer.alloc(16, 7), fixedIv: Buffer.alloc(4, 7) }, { encryptThenMac: false });

describe('an established session and unauthenticated records (defect 1)', () => {
  it.each([
    ['a fatal handshake_failure alert', encodeAlert(AlertLevel.fatal, AlertDescription.handshake_failure)],
    ['close_notify', encodeAlert(AlertLevel.warning, AlertDescription.close_notify)],
  ])('a plaintext (epoch 0) %s from the device address:port does not end the session', async (_name, alert) => {
    const { server, port } = await start();
    const p = await peer(port);
    const s = (await fullHandshake(p, 'SN-alert', psk('SN-alert')))!;
    expect(s).toBeDefined();
    expect(await echoes(p, s, 'before')).toBe(true);
    p.send(encodeRecord(ContentType.alert, 0xfefd, 0, 1000, alert));
    await sleep(50);
    expect(server.sessionCount).toBe(1);
    expect(await echoes(p, s, 'after')).toBe(true);
  });

  it('a forged epoch-0 handshake record does not make the server resend its final flight', async () => {
    const { port } = await start();
    const p = await peer(port);
    const s = (await fullHandshake(p, 'SN-forged0', psk('SN-forged0')))!;
    await sleep(1100); // past the once-a-second bound on final-flight resends
    p.send(s.plain(ContentType.handshake, encodeHandshake(HandshakeType.finished, 2, Buffer.alloc(12))));
    p.send(s.repeatClientKeyExchange());
    const answer = await p.recv(500);
    expect(answer).toBeUndefined();
  });

  it('the client Finished again under epoch-1 keys (flight 5 retransmitted) gets the final flight again', async () => {
    const { port } = await start();
    const p = await peer(port);
    const s = (await fullHandshake(p, 'SN-refin', psk('SN-refin')))!;
    await sleep(1100);
    p.send(Buffer.concat([s.repeatClientKeyExchange(), s.repeatChangeCipherSpecAndFinished()]));
    const fin = await p.recvUntil((d) => s.open(d).some((r) => r.type === ContentType.handshake), 2000);
    expect(fin).toBeDefined();
  });

  it('records that fail authentication do not keep a session from idling out (defect 7)', async () => {
    const { server, port } = await start({ idleTimeoutMs: 600 });
    const p = await peer(port);
    const s = (await fullHandshake(p, 'SN-idle', psk('SN-idle')))!;
    const junk = junkKeys();
    for (let i = 0; i < 12 && server.sessionCount > 0; i++) {
      p.send(s.sealRecord(ContentType.application_data, Buffer.from('forged'), junk));
      await sleep(150);
    }
    expect(server.sessionCount).toBe(0);
  });
});

describe('alerts of a failing handshake go out in the epoch the client can read (defect 2)', () => {
  it('a Finished with forged verify_data gets a plaintext (epoch 0) decrypt_error', async () => {
    const { port } = await start();
    const p = await peer(port);
    const s = (await toFlight4(p))!;
    p.send(s.clientKeyExchange(Buffer.from('SN-forge')));
    s.deriveKeys(psk('SN-forge'));
    const forged = Buffer.from(s.expectedVerifyData());
    forged[0] ^= 1;
    p.send(s.changeCipherSpecAndFinished({ finishedBody: forged }));
    const d = await p.recvUntil((dg) => plainAlerts(dg).length > 0, 3000);
    expect(d && plainAlerts(d)).toContainEqual([AlertLevel.fatal, AlertDescription.decrypt_error]);
  });
});

describe('forged records cannot kill an honest handshake (defect 3)', () => {
  it('one datagram of several junk epoch-1 records, then the honest Finished: the handshake completes', async () => {
    const { server, port } = await start();
    const p = await peer(port);
    const s = (await toFlight4(p))!;
    p.send(s.clientKeyExchange(Buffer.from('SN-honest')));
    s.deriveKeys(psk('SN-honest'));
    await sleep(100); // the key lookup
    const junk = junkKeys();
    p.send(Buffer.concat([0, 1, 2, 3].map(() => s.sealRecord(ContentType.handshake, Buffer.alloc(24, 1), junk))));
    await sleep(50);
    p.send(s.changeCipherSpecAndFinished());
    const fin = await p.recvUntil((d) => s.open(d).some((r) => r.type === ContentType.handshake), 3000);
    expect(fin).toBeDefined();
    expect(server.sessionCount).toBe(1);
  });

  it('a client with the wrong key still gets bad_record_mac after its second transmission of flight 5', async () => {
    const { port, events } = await start();
    const p = await peer(port);
    const s = (await toFlight4(p))!;
    p.send(s.clientKeyExchange(Buffer.from('SN-wrongkey')));
    s.deriveKeys(psk('SN-someone-else'));
    p.send(s.changeCipherSpecAndFinished());
    await sleep(100);
    p.send(Buffer.concat([s.repeatClientKeyExchange(), s.repeatChangeCipherSpecAndFinished()]));
    const d = await p.recvUntil((dg) => plainAlerts(dg).length > 0, 3000);
    expect(d && plainAlerts(d)).toContainEqual([AlertLevel.fatal, AlertDescription.bad_record_mac]);
    await until(() => events.length > 0);
    expect(events[0]!.reason).toBe('finished_unreadable');
  });
});

describe('RFC 6347 4.2.8: the old session stays until the new handshake verifies (defect 4)', () => {
  it('a ClientHello with a valid cookie from the device address:port leaves the session alone while its handshake runs and after it times out', async () => {
    const { server, port } = await start({ handshakeTimeoutMs: 300, retransmit: { initialMs: 100, maxMs: 100, maxRetransmits: 1 } });
    const p = await peer(port);
    const s = (await fullHandshake(p, 'SN-keep', psk('SN-keep')))!;
    // An attacker on the path (or a replay): a fresh ClientHello from the device's address:port.
    const attacker = new PskClientSession();
    p.send(attacker.firstHello());
    const hvr = await p.recvUntil((d) => readHelloVerifyCookie(d) !== undefined, 2000);
    p.send(attacker.helloWithCookie(readHelloVerifyCookie(hvr!)!));
    await until(() => server.handshakeCount === 1);
    expect(server.sessionCount).toBe(1);
    expect(await echoes(p, s, 'during')).toBe(true);
    await until(() => server.handshakeCount === 0, 3000);
    expect(server.sessionCount).toBe(1);
    expect(await echoes(p, s, 'after')).toBe(true);
  });
});

describe('odd ClientHellos (defect 7)', () => {
  it('a ClientHello with record sequence number 2^48-1 and a valid cookie is dropped, not thrown', async () => {
    const { server, port } = await start();
    const p = await peer(port);
    const s = new PskClientSession();
    p.send(s.firstHello());
    const hvr = await p.recvUntil((d) => readHelloVerifyCookie(d) !== undefined, 2000);
    const body = clientHelloBody({ random: s.random, cookie: readHelloVerifyCookie(hvr!)! });
    p.send(handshakeRecord(HandshakeType.client_hello, 1, body, 2 ** 48 - 1));
    await until(() => (server.stats.dropped.sequence_exhausted ?? 0) === 1);
    expect(server.stats.dropped.internal ?? 0).toBe(0);
    expect(server.handshakeCount).toBe(0);
  });
});

describe('record_overflow (defect 7)', () => {
  it('an authenticated record with more than 2^14 bytes of plaintext ends the session with record_overflow', async () => {
    const { server, port } = await start();
    const p = await peer(port);
    const s = (await fullHandshake(p, 'SN-big', psk('SN-big')))!;
    p.send(s.applicationData(Buffer.alloc(2 ** 14 + 1, 0x41)));
    const d = await p.recvUntil((dg) => s.open(dg).some((r) => r.type === ContentType.alert), 2000);
    const alert = s.open(d!).find((r) => r.type === ContentType.alert)!;
    expect([...alert.plaintext]).toEqual([AlertLevel.fatal, AlertDescription.record_overflow]);
    await until(() => server.sessionCount === 0);
  });
});

describe('handshakeTimeoutMs bounds the retransmissions (defect 7)', () => {
  it('flight 4 is not retransmitted past the handshake timeout, and the handshake ends at it with handshake_timeout', async () => {
    const { port, events } = await start({ handshakeTimeoutMs: 700, retransmit: { initialMs: 200, maxMs: 60_000, maxRetransmits: 6 } });
    const p = await peer(port);
    expect(await toFlight4(p)).toBeDefined(); // flight 4 at 0 ms; then the client goes silent
    const started = Date.now();
    let repeats = 0;
    while (Date.now() - started < 1800) if (await p.recv(1800 - (Date.now() - started))) repeats++;
    await until(() => events.length > 0);
    expect(events[0]!.reason).toBe('handshake_timeout');
    expect(repeats).toBeLessThanOrEqual(3); // 200, 600 ms (and the fatal alert at 700)
  });
});
