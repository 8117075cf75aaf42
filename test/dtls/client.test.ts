/**
 * The DTLS client role (the load generator's) against three real servers on 127.0.0.1: this
 * project's server in process (software resolver), `openssl s_server -dtls1_2` and libcoap's
 * `coap-server-openssl`. Each test is bounded by the client's own handshake timeout and the
 * peers' hard kill timers.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDtls, DtlsClientError, DtlsClientSession } from '../../src/dtls/client.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import { startCoapServerOpenssl, type CoapServer } from '../helpers/peers.js';
import { freeUdpPort, LOOPBACK } from '../helpers/ports.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key
const pskFor = (serial: string) => deriveSoftware(MASTER, Buffer.from(serial, 'utf8'));
const SUITES: Array<[string, number]> = [
  ['TLS_PSK_WITH_AES_128_CCM_8', 0xc0a8],
  ['TLS_PSK_WITH_AES_128_CCM', 0xc0a4],
  ['TLS_PSK_WITH_AES_128_GCM_SHA256', 0x00a8],
  ['TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256', 0xccac],
  ['TLS_PSK_WITH_AES_128_CBC_SHA256', 0x00ae],
];

function nextData(session: DtlsClientSession, ms = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no data')), ms);
    session.once('data', (d: Buffer) => {
      clearTimeout(t);
      resolve(d);
    });
  });
}

describe('DtlsClientSession against this server (in process)', () => {
  let server: CoapPskServer;
  let port: number;
  beforeAll(async () => {
    const keys = new SoftwareResolver({ keys: [{ label: 'k1', master: MASTER }], warn: () => {} });
    server = await createServer({ keys });
    port = (await server.listen(0, LOOPBACK)).port;
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(SUITES)('%s: handshake, CON GET /whoami, close_notify', async (name, id) => {
    const serial = `SN-${id.toString(16)}`;
    const c = await connectDtls({ host: LOOPBACK, port, identity: serial, psk: pskFor(serial), cipherSuites: [id], timeoutMs: 5000 });
    try {
      expect(c.session.suite?.name).toBe(name);
      expect(c.session.extendedMasterSecret).toBe(true);
      const reply = nextData(c.session);
      expect(c.send(coapGet(0x1234, ['whoami']))).toBe(true);
      const r = parseReply(await reply);
      expect(r?.code).toBe('2.05');
      expect(r?.messageId).toBe(0x1234);
      expect(r?.payload.toString()).toBe(serial);
    } finally {
      await c.close();
    }
  });

  it('without extended_master_secret, and with the server picking from several suites', async () => {
    const c = await connectDtls({
      host: LOOPBACK, port, identity: 'SN-noems', psk: pskFor('SN-noems'),
      cipherSuites: [0xc0a8, 0xccac], extendedMasterSecret: false, timeoutMs: 5000,
    });
    try {
      expect(c.session.extendedMasterSecret).toBe(false);
      expect(c.session.suite?.name).toBe('TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256'); // server preference
      const reply = nextData(c.session);
      c.send(coapGet(7, ['whoami']));
      expect(parseReply(await reply)?.payload.toString()).toBe('SN-noems');
    } finally {
      await c.close();
    }
  });

  it('a wrong key fails the handshake with an alert, not a hang', async () => {
    const err = await connectDtls({ host: LOOPBACK, port, identity: 'SN-a', psk: pskFor('SN-b'), timeoutMs: 5000 }).catch((e) => e);
    expect(err).toBeInstanceOf(DtlsClientError);
    expect(String(err.message)).toMatch(/fatal alert (20|51)/);
  });

  it('retransmits its flights through a link that drops the first datagrams each way', async () => {
    // The session on a hand-made transport: every first copy of a flight is lost.
    const dgram = await import('node:dgram');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.connect(port, LOOPBACK, () => r()));
    let out = 0;
    let inbound = 0;
    const session = new DtlsClientSession(
      { identity: 'SN-lossy', psk: pskFor('SN-lossy'), retransmit: { initialMs: 100, maxMs: 400, maxRetransmits: 8 } },
      (d) => {
        if (out++ % 2 === 0) return; // drop every other datagram we send
        sock.send(d);
      },
    );
    sock.on('message', (m) => {
      if (inbound++ === 1) return; // lose the server's flight after the HelloVerifyRequest once
      session.onDatagram(m);
    });
    try {
      const done = new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no handshake in 8 s')), 8000);
        session.once('established', () => {
          clearTimeout(t);
          resolve();
        });
      });
      session.start();
      await done;
      expect(session.state).toBe('established');
    } finally {
      session.close(false);
      await new Promise<void>((r) => sock.close(() => r()));
    }
  });
});

describe('DtlsClientSession against openssl s_server', () => {
  it('PSK-AES128-CCM8: handshake and application data both ways', async () => {
    const port = await freeUdpPort();
    const psk = pskFor('SN-openssl');
    // Test key on argv: acceptable only for a made-up test key (see test/helpers/peers.ts).
    const child = spawn('openssl', [
      's_server', '-dtls1_2', '-nocert', '-psk', psk.toString('hex'), '-psk_hint', 'hint',
      '-cipher', 'PSK-AES128-CCM8', '-accept', `${LOOPBACK}:${port}`, '-4', '-quiet',
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.resume();
    try {
      // s_server binds after start-up: retry the connect a bounded number of times.
      let c;
      for (let i = 0; i < 20 && !c; i++) {
        c = await connectDtls({ host: LOOPBACK, port, identity: 'SN-openssl', psk, timeoutMs: 1500, retransmit: { initialMs: 300, maxMs: 600, maxRetransmits: 3 } }).catch(() => undefined);
        if (!c) await new Promise((r) => setTimeout(r, 100));
      }
      expect(c, 'no handshake with s_server').toBeDefined();
      expect(c!.session.suite?.name).toBe('TLS_PSK_WITH_AES_128_CCM_8');
      expect(c!.session.extendedMasterSecret).toBe(true);
      const back = nextData(c!.session);
      child.stdin.write('from-server\n');
      expect((await back).toString()).toBe('from-server\n');
      c!.send(Buffer.from('from-client\n'));
      for (let i = 0; i < 50 && !stdout.includes('from-client'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(stdout).toContain('from-client');
      await c!.close();
    } finally {
      clearTimeout(kill);
      child.kill('SIGKILL');
    }
  });
});

describe('DtlsClientSession against coap-server-openssl', () => {
  let libcoap: CoapServer;
  beforeAll(async () => {
    libcoap = await startCoapServerOpenssl({ key: 'bench-test-key', lifetimeSec: 60 });
  });
  afterAll(async () => {
    await libcoap?.stop();
  });

  it('TLS_PSK_WITH_AES_128_CCM_8 forced by the client: CON GET /time is answered', async () => {
    const c = await connectDtls({ host: LOOPBACK, port: libcoap.port, identity: 'SN-libcoap', psk: Buffer.from('bench-test-key'), timeoutMs: 5000 });
    try {
      expect(c.session.suite?.name).toBe('TLS_PSK_WITH_AES_128_CCM_8');
      const reply = nextData(c.session);
      c.send(coapGet(0x4242, ['time']));
      const r = parseReply(await reply);
      expect(r?.messageId).toBe(0x4242);
      expect(r?.code).toBe('2.05');
    } finally {
      await c.close();
    }
  });
});
