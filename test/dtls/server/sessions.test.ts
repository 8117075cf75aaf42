/**
 * Session life cycle on the real server (in process, loopback) with this project's client:
 * a rebooted device (same address and port, new handshake) replaces its old session once the
 * new handshake verifies (test/dtls/server/epochs.test.ts: not before),
 * close_notify ends a session, idle sessions are closed, renegotiation is refused.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DtlsClientSession } from '../../../src/dtls/client.js';
import { ContentType } from '../../../src/dtls/constants.js';
import type { DtlsServerOptions } from '../../../src/dtls/server.js';
import type { DtlsSession } from '../../../src/dtls/session.js';
import { startSoftwareDtlsServer, testPsk } from '../../helpers/software-dtls-server.js';
import { until } from '../../helpers/wait.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(options: Partial<DtlsServerOptions> = {}) {
  const { server, port } = await startSoftwareDtlsServer(cleanups, options);
  server.on('session-data', (session: DtlsSession, data: Buffer) => session.send(Buffer.concat([Buffer.from('echo:'), data])));
  return { server, port };
}

/** A device on a fixed local port, so that a "reboot" comes back from the same address and port. */
async function device(serverPort: number, serial: string, localPort = 0) {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => socket.bind(localPort, '127.0.0.1', () => r()));
  const sent: Buffer[] = [];
  const session = new DtlsClientSession({ identity: serial, psk: testPsk(serial) }, (d) => {
    sent.push(Buffer.from(d));
    socket.send(d, serverPort, '127.0.0.1');
  });
  socket.on('message', (m) => session.onDatagram(m));
  const received: Buffer[] = [];
  session.on('data', (d: Buffer) => received.push(d));
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('established', () => resolve());
    session.once('close', (reason: string) => reject(new Error(reason)));
    session.start();
  });
  const close = () => new Promise<void>((r) => socket.close(() => r()));
  return { socket, session, received, sent, port: socket.address().port, close };
}


describe('sessions', () => {
  it('a rebooted device (same address and port) replaces its old session', async () => {
    const { server, port } = await start();
    const first = await device(port, 'SN-reboot');
    const localPort = first.port;
    await first.close(); // power loss: no close_notify
    const second = await device(port, 'SN-reboot', localPort);
    cleanups.push(second.close);
    expect(second.port).toBe(localPort);
    // The old session was replaced when the new handshake's Finished verified (RFC 6347 4.2.8),
    // not when its ClientHello arrived: one session, no handshake left over.
    expect(server.sessionCount).toBe(1);
    expect(server.handshakeCount).toBe(0);
    second.session.send(Buffer.from('after reboot'));
    await until(() => second.received.length > 0);
    expect(second.received[0].toString()).toBe('echo:after reboot');
  });

  it('a late duplicate of the ClientHello that made the session does not replace it', async () => {
    const { server, port } = await start();
    const d = await device(port, 'SN-dup');
    cleanups.push(d.close);
    const helloWithCookie = d.sent[1]; // [0] is the first ClientHello, [1] the one with the cookie
    d.socket.send(helloWithCookie, port, '127.0.0.1');
    await until(() => (server.stats.dropped.stale_hello ?? 0) === 1);
    expect(server.peer('127.0.0.1', d.port)?.identity).toBe('SN-dup');
    d.session.send(Buffer.from('still mine'));
    await until(() => d.received.length > 0);
    expect(d.received[0].toString()).toBe('echo:still mine');
  });

  it('close_notify from the device ends the session on the server', async () => {
    const { server, port } = await start();
    const d = await device(port, 'SN-bye');
    cleanups.push(d.close);
    expect(server.peer('127.0.0.1', d.port)?.identity).toBe('SN-bye');
    d.session.close(true);
    await until(() => server.peer('127.0.0.1', d.port) === undefined);
    expect(server.sessionCount).toBe(0);
  });

  it('closes a session idle for longer than idleTimeoutMs, with close_notify', async () => {
    const { server, port } = await start({ idleTimeoutMs: 300 });
    const d = await device(port, 'SN-idle');
    cleanups.push(d.close);
    let closedBy = '';
    d.session.on('close', (reason: string) => (closedBy = reason));
    await until(() => server.sessionCount === 0, 4000);
    await until(() => closedBy !== '', 1000);
    expect(closedBy).toMatch(/close_notify|closed/);
  });

  // The alert is encrypted under the session keys; that it is a warning (no_renegotiation) and
  // not fatal shows in the session carrying on.
  it('answers a renegotiation attempt with an alert and keeps the session', async () => {
    const { server, port } = await start();
    const d = await device(port, 'SN-reneg');
    cleanups.push(d.close);
    const alerts: Buffer[] = [];
    d.socket.on('message', (m) => {
      if (m[0] === ContentType.alert) alerts.push(m);
    });
    // A ClientHello header (msg_type 1) inside an epoch-1 handshake record, sealed with the
    // session's own keys (the client role has no public call for this, on purpose).
    const fakeHello = Buffer.from([1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0]);
    (d.session as unknown as { sendDatagram: (b: Buffer) => void }).sendDatagram(
      (d.session as unknown as { protect: (t: number, b: Buffer) => Buffer }).protect(ContentType.handshake, fakeHello),
    );
    await until(() => alerts.length > 0);
    expect(alerts[0].readUInt16BE(3)).toBe(1); // epoch 1: encrypted, so we only check it came
    expect(server.sessionCount).toBe(1);
    d.session.send(Buffer.from('still here'));
    await until(() => d.received.length > 0);
    expect(d.received[0].toString()).toBe('echo:still here');
  });
});
