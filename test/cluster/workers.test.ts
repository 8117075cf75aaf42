/**
 * `coap-psk serve --workers 2` as a real process tree on a real SoftHSM token: libcoap's
 * coap-client, openssl s_client and this project's DTLS client from many source ports; both
 * workers get sessions (per-worker metrics); a killed worker is started again, its devices
 * handshake again with the replacement, and the other worker's devices keep their sessions;
 * SIGHUP reaches every worker, SIGTERM stops them all.
 *
 * Which worker holds a device is read from the workers' log lines ('handshake ok' carries the
 * worker id and pid), not from the server's own bookkeeping.
 *
 * Needs dgram reusePort (Node ≥ 22.12): skipped on older Node; CI runs it on Node 24 (.ci/run).
 */
import dgram from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtlsClientSession } from '../../src/dtls/client.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import { asciiKeyToPskHex, coapClient, sClient } from '../helpers/peers.js';
import { freePortPair, LOOPBACK } from '../helpers/ports.js';
import { sample } from '../helpers/prometheus.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { until } from '../helpers/wait.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';

const DEVICES = 16;

interface LogLine {
  msg: string;
  worker?: number | string;
  pid: number;
  identity?: string;
  role?: string;
  workerPid?: number;
}

/** A device: one UDP socket (one source port, kept for its whole life) and its DTLS session. */
class Device {
  private session: DtlsClientSession | undefined;
  private messageId = 0x1000;
  private constructor(readonly serial: string, readonly socket: dgram.Socket) {}

  static async open(serial: string, port: number): Promise<Device> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.connect(port, LOOPBACK, () => r()));
    socket.on('error', () => {});
    return new Device(serial, socket);
  }

  /** A new handshake from the same source port. */
  handshake(): Promise<void> {
    this.session?.removeAllListeners();
    this.session?.close(false);
    const psk = Buffer.from(expectedHexKey(this.serial), 'ascii'); // the server runs the hex encoding
    const session = new DtlsClientSession({ identity: this.serial, psk, retransmit: { initialMs: 500, maxMs: 2000, maxRetransmits: 5 } }, (d) => this.socket.send(d));
    this.session = session;
    this.socket.removeAllListeners('message');
    this.socket.on('message', (m) => session.onDatagram(m));
    return new Promise((resolve, reject) => {
      session.once('established', () => resolve());
      session.once('close', (reason: string) => reject(new Error(`${this.serial}: ${reason}`)));
      session.on('error', reject);
      session.start();
    });
  }

  /** GET /whoami on the current session: the payload, or undefined without an answer in time. */
  whoami(timeoutMs = 3000): Promise<string | undefined> {
    const session = this.session!;
    const id = ++this.messageId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        session.off('data', onData);
        resolve(undefined);
      }, timeoutMs);
      const onData = (d: Buffer) => {
        const r = parseReply(d);
        if (r?.messageId !== id) return;
        clearTimeout(timer);
        session.off('data', onData);
        resolve(r.payload.toString());
      };
      session.on('data', onData);
      session.send(coapGet(id, ['whoami']));
    });
  }

  close(): Promise<void> {
    this.session?.close(true);
    return new Promise((r) => this.socket.close(() => r()));
  }
}

describe.skipIf(NO_REUSE_PORT)(`serve --workers 2${SKIP_REASON}`, () => {
  let token: TestToken;
  let server: ServerProcess;
  let metricsPort: number;
  let denyList: string;
  const devices: Device[] = [];

  const lines = (): LogLine[] =>
    server.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  /** The worker id of each 'handshake ok' for a serial, in order. */
  const handshakesOf = (serial: string) => lines().filter((l) => l.msg === 'handshake ok' && l.identity === serial);
  const metric = async (name: string, labels?: Record<string, string>) =>
    sample(await (await fetch(`http://${LOOPBACK}:${metricsPort}/metrics`)).text(), name, labels);

  beforeAll(async () => {
    token = await makeToken('cluster-workers');
    metricsPort = await freePortPair();
    denyList = join(token.dir, 'denied.txt');
    await writeFile(denyList, '');
    server = await startServerProcess({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' }, [
      '--workers', '2', '--metrics-port', String(metricsPort), '--log-format', 'json', '--deny-list', denyList,
    ]);
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await server?.stop();
    await token?.cleanup();
  });

  it('serves coap-client, openssl s_client and the project client from many source ports, on both workers', async () => {
    for (let i = 0; i < DEVICES; i++) devices.push(await Device.open(`SN-w${i}`, server.port));
    await Promise.all(devices.map((d) => d.handshake()));
    for (const d of devices) expect(await d.whoami()).toBe(d.serial);

    for (const serial of ['SN-libcoap-1', 'SN-libcoap-2', 'SN-libcoap-3']) {
      const res = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: `coaps://${LOOPBACK}:${server.port}/whoami` });
      expect(res.payload, res.stderr).toBe(serial);
    }
    for (const serial of ['SN-openssl-1', 'SN-openssl-2']) {
      const res = await sClient({ port: server.port, identity: serial, pskHex: asciiKeyToPskHex(expectedHexKey(serial)), cipher: 'PSK-AES128-CCM8' });
      expect(res.handshakeOk, res.stderr).toBe(true);
    }

    // 16 devices on two sockets chosen by the kernel's hash: all on one would be 1 in 32,768.
    await until(() => devices.every((d) => handshakesOf(d.serial).length > 0), 5_000).catch(() => undefined);
    const workersOf = new Set(devices.map((d) => handshakesOf(d.serial)[0]?.worker));
    expect(workersOf).toEqual(new Set([1, 2]));
    expect(await metric('coap_psk_worker_sessions', { worker: '1' })).toBeGreaterThan(0);
    expect(await metric('coap_psk_worker_sessions', { worker: '2' })).toBeGreaterThan(0);
    expect(await metric('coap_psk_sessions')).toBeGreaterThanOrEqual(DEVICES);
    expect(await metric('coap_psk_workers_up')).toBe(2);
    const health = await fetch(`http://${LOOPBACK}:${metricsPort}/healthz`);
    expect(health.status).toBe(200);
  });

  it('starts a killed worker again; its devices handshake again, the other worker\'s keep their sessions', async () => {
    // Worker 1: its socket is not the kernel's last of the port, the case in which a worker
    // that binds its own socket would move the other worker's peers on restart.
    const victim = lines().find((l) => l.msg === 'handshake ok' && l.worker === 1)!;
    const victimDevices = devices.filter((d) => handshakesOf(d.serial)[0]!.worker === victim.worker);
    const others = devices.filter((d) => !victimDevices.includes(d));
    expect(others.length).toBeGreaterThan(0);

    process.kill(victim.pid, 'SIGKILL');
    const replaced = () => lines().find((l) => l.role === 'primary' && l.msg === 'worker serving' && l.worker === victim.worker && l.workerPid !== victim.pid);
    await until(() => replaced() !== undefined, 20_000);
    expect(await metric('coap_psk_worker_restarts_total', { worker: String(victim.worker) })).toBe(1);

    // The survivor's devices: the same sessions answer, and no new handshake was made.
    for (const d of others) {
      expect(await d.whoami()).toBe(d.serial);
      expect(handshakesOf(d.serial)).toHaveLength(1);
    }
    // The victim's devices: their sessions died with it; from the same source ports, they
    // handshake again and land on the replacement.
    for (const d of victimDevices) {
      await d.handshake();
      expect(await d.whoami()).toBe(d.serial);
      // Logs are written in batches: the line of the handshake just made may still be on its way.
      await until(() => handshakesOf(d.serial).length >= 2, 5_000);
      const again = handshakesOf(d.serial);
      expect(again).toHaveLength(2);
      expect(again[1]!.worker).toBe(victim.worker);
      expect(again[1]!.pid).toBe(replaced()!.workerPid);
    }
  });

  it('passes SIGHUP to every worker: each rereads the deny list', async () => {
    await writeFile(denyList, 'SN-denied-1\nSN-denied-2\n');
    const reloads = () => lines().filter((l) => l.msg === 'deny list reloaded' && (l as { denied?: number }).denied === 2);
    server.child.kill('SIGHUP');
    await until(() => reloads().length === 2, 10_000);
    expect(new Set(reloads().map((l) => l.worker))).toEqual(new Set([1, 2]));
  });

  it('stops every worker on SIGTERM and exits 0', async () => {
    expect(await server.stop()).toBe(0);
    expect(lines().filter((l) => l.msg === 'stopped' && typeof l.worker === 'number')).toHaveLength(2);
  });
});
