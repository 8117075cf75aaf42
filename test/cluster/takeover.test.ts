/**
 * Graceful restart (issue 14, item 3), real processes on loopback: `coap-psk serve` with 200
 * established sessions (the project's DTLS client, one UDP socket and source port each), each
 * observing GET /value (RFC 7641; half registered with CON, half with NON), half of them with
 * a Connection ID (RFC 9146, the project's CID client: a CID of their own or an empty one); a second
 * `coap-psk serve --takeover` takes them over and the first exits 0; every device's request
 * before and after is answered, the new process logs no handshake, and every device's
 * notifications go on from the new process on its token with fresher Observe numbers; the CID
 * devices then change their source port and are still answered, by CID. Then a
 * successor that dies after receiving the sealed state, before acknowledging, leaves the
 * server serving every device, still without a handshake. Needs dgram reusePort (Node 24 in CI).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtlsClientSession } from '../../src/dtls/client.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { coapAck, coapGet, coapObserve, coapPost, observeFresher, parseNotification, parseReply, type Notification } from '../helpers/coap-bytes.js';
import { freeUdpPort, LOOPBACK } from '../helpers/ports.js';
import { createTestToken, type TestToken } from '../helpers/softhsm.js';
import { MASTER_HEX } from '../keys/vectors.js';
import { BIN } from '../cli/run.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';

const DEVICES = 200;
const MASTER = Buffer.from(MASTER_HEX, 'hex');
const ROUTES = ['--routes', join(import.meta.dirname, 'observe-routes.ts')];

interface Device {
  serial: string;
  session: DtlsClientSession;
  socket: dgram.Socket;
  /** The token of its Observe registration; every message with a 4-byte token lands in `notes`. */
  token: Buffer;
  notes: Notification[];
  /** RFC 9146: the device asked for a Connection ID (see cidOf). */
  cid: boolean;
}

/**
 * Every 4th device offers a Connection ID of its own (4 bytes), every 4th from the second on
 * an empty one (it sends the server's CID but wants none back): both kinds of CID session.
 */
function cidOf(index: number): Buffer | undefined {
  if (index % 4 === 0) return Buffer.from([0xc1, 0xd0, index >> 8, index & 0xff]);
  if (index % 4 === 1) return Buffer.alloc(0);
  return undefined;
}

interface Server {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

let token: TestToken;
let runtimeDir: string;
let port: number;
const children: ChildProcess[] = [];
const devices: Device[] = [];

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...token.env,
    COAP_PSK_HOST: LOOPBACK,
    COAP_PSK_PORT: String(port),
    COAP_PSK_LOG_FORMAT: 'json',
    COAP_PSK_LOG_LEVEL: 'info',
    XDG_RUNTIME_DIR: runtimeDir,
    RUNTIME_DIRECTORY: '',
  };
}

function start(args: string[], until: RegExp): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', ...ROUTES, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no ${until} in 60 s:\n${log}`)), 60_000);
    const check = (): void => {
      if (!until.test(log)) return;
      clearTimeout(timer);
      done({ child, log: () => log, exited });
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      if (!until.test(log)) fail(new Error(`exited before ${until}:\n${log}`));
    });
  });
}

async function openSocket(d: { session: DtlsClientSession }): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(port, LOOPBACK, resolve));
  socket.on('message', (m) => d.session.onDatagram(m));
  socket.on('error', () => {});
  return socket;
}

/** A NAT rebinding: the device's records leave from a new source port from now on. */
async function rebind(d: Device): Promise<void> {
  const old = d.socket;
  d.socket = await openSocket(d);
  old.close();
}

async function connect(serial: string, connectionId?: Buffer): Promise<Device> {
  const token = Buffer.from(createHash('sha256').update(serial).digest().subarray(0, 4));
  const device = { serial, token, notes: [] as Notification[], cid: connectionId !== undefined } as Device;
  const psk = deriveSoftware(MASTER, Buffer.from(serial, 'utf8'));
  device.session = new DtlsClientSession({ identity: serial, psk, ...(connectionId ? { connectionId } : {}) }, (d) => device.socket.send(d));
  device.socket = await openSocket(device);
  const session = device.session;
  const conSeen = new Set<number>();
  session.on('data', (d: Buffer) => {
    const n = (d[0]! & 0x0f) === 4 ? parseNotification(d) : undefined;
    if (!n) return;
    // A CON notification is acknowledged (RFC 7252 4.2); one whose ACK was late comes again with
    // the same Message ID (4.5: a duplicate, acknowledged again, not a new notification).
    if (n.type === 0) session.send(coapAck(n.messageId));
    if (n.type === 0 && conSeen.has(n.messageId)) return;
    if (n.type === 0) conSeen.add(n.messageId);
    device.notes.push(n);
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${serial}: handshake timeout`)), 20_000);
    session.once('established', () => {
      clearTimeout(t);
      resolve();
    });
    session.start();
  });
  return device;
}

/** CON GET /whoami, retransmitted (bounded) as a device would; the reply's payload, or undefined. */
function whoami(d: Device, mid: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let tries = 0;
    let timer: NodeJS.Timeout;
    const onData = (data: Buffer): void => {
      const r = parseReply(data);
      if (!r || r.messageId !== mid || (data[0]! & 0x0f) !== 1 || data[4] !== 0xab) return;
      clearTimeout(timer);
      d.session.off('data', onData);
      resolve(`${r.code} ${r.payload.toString()}`);
    };
    const attempt = (): void => {
      if (tries++ === 4) {
        d.session.off('data', onData);
        return resolve(undefined);
      }
      d.session.send(coapGet(mid, ['whoami']));
      timer = setTimeout(attempt, 2000);
    };
    d.session.on('data', onData);
    attempt();
  });
}

async function everyDevice(mid: number): Promise<string[]> {
  const failed: string[] = [];
  for (let i = 0; i < devices.length; i += 50) {
    const batch = devices.slice(i, i + 50);
    const replies = await Promise.all(batch.map((d) => whoami(d, mid)));
    replies.forEach((r, j) => {
      if (r !== `2.05 ${batch[j]!.serial}`) failed.push(`${batch[j]!.serial}: ${r}`);
    });
  }
  return failed;
}

/** Waits (bounded) until `ok` holds for the device; false if it never did. */
async function until(ok: () => boolean, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; !ok() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  return ok();
}

/** GET /value with Observe: 0 (even devices CON, odd NON), again (bounded) until the 2.05 comes. */
async function observe(d: Device, index: number): Promise<boolean> {
  for (let attempt = 0; attempt < 4; attempt++) {
    d.session.send(coapObserve(0x4000 + index, d.token, 'value', index % 2 === 0));
    if (await until(() => d.notes.some((n) => n.code === '2.05' && n.observe !== undefined), 2000)) return true;
  }
  return false;
}

/** POST /bump from the first device: every observer gets one notification; the reply counts them. */
async function bump(mid: number): Promise<string | undefined> {
  const d = devices[0]!;
  let reply: string | undefined;
  const onData = (data: Buffer): void => {
    const r = parseReply(data);
    if (r && r.messageId === mid && data[4] === 0xac) reply = `${r.code} ${r.payload.toString()}`;
  };
  d.session.on('data', onData);
  for (let attempt = 0; attempt < 4 && reply === undefined; attempt++) {
    d.session.send(coapPost(mid, 'bump'));
    await until(() => reply !== undefined, 2000);
  }
  d.session.off('data', onData);
  return reply;
}

/** Devices whose latest notification is not `payload` within the bound (their serials). */
async function notLatest(payload: string): Promise<string[]> {
  const latest = (d: Device): string | undefined => d.notes.at(-1)?.payload.toString();
  await until(() => devices.every((d) => latest(d) === payload), 15_000);
  return devices.filter((d) => latest(d) !== payload).map((d) => `${d.serial}: ${latest(d)}`);
}

/**
 * What the devices' notifications broke of RFC 7641: each on the registration's token, with an
 * Observe option, each Observe number fresher than the one before (3.4), all 2.05.
 */
function observeBroken(): string[] {
  const broken: string[] = [];
  for (const d of devices) {
    let previous: number | undefined;
    for (const n of d.notes) {
      if (!n.token.equals(d.token) || n.code !== '2.05' || n.observe === undefined) broken.push(`${d.serial}: ${n.code} token ${n.token.toString('hex')} observe ${n.observe}`);
      else if (previous !== undefined && !observeFresher(previous, n.observe)) broken.push(`${d.serial}: observe ${n.observe} after ${previous}`);
      previous = n.observe ?? previous;
    }
  }
  return broken;
}

const handshakesIn = (log: string): number => (log.match(/"msg":"handshake ok"/g) ?? []).length;

/** Logs are written in batches: waits (bounded) until `ok` holds for the log so far. */
async function logged(server: Server, ok: (log: string) => boolean, ms = 10_000): Promise<string> {
  for (const end = Date.now() + ms; !ok(server.log()) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
  return server.log();
}

beforeAll(async () => {
  if (NO_REUSE_PORT) return;
  token = await createTestToken({ label: 'takeover-test', pin: '2468', keys: [{ label: 'k1', hex: MASTER_HEX }] });
  runtimeDir = await mkdtemp(join(tmpdir(), 'coap-psk-takeover-'));
}, 60_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await token?.cleanup();
  if (runtimeDir) await rm(runtimeDir, { recursive: true, force: true });
});

describe.skipIf(NO_REUSE_PORT)(`graceful restart: serve --takeover${SKIP_REASON}`, () => {
  beforeAll(async () => {
    port = await freeUdpPort();
  });
  afterAll(() => {
    for (const d of devices.splice(0)) d.socket.close();
  });

  let current: Server;

  it(`${DEVICES} sessions go on with the new process, none handshakes again, the old exits 0`, async () => {
    const old = await start([], /"msg":"coap-psk serving/);
    for (let i = 0; i < DEVICES; i += 20) {
      devices.push(...(await Promise.all(Array.from({ length: Math.min(20, DEVICES - i) }, (_, j) => connect(`SN-TAKE-${i + j}`, cidOf(i + j))))));
    }
    const cidDevices = devices.filter((d) => d.cid);
    expect(cidDevices.length).toBe(DEVICES / 2);
    // The server answered each offer with a CID of its own: records to it carry that CID.
    expect(cidDevices.filter((d) => d.session.connectionIds.write?.length !== 6).map((d) => d.serial)).toEqual([]);
    expect(new Set(devices.map((d) => d.socket.address().port)).size).toBe(DEVICES);
    expect(await everyDevice(1)).toEqual([]);
    expect(handshakesIn(await logged(old, (l) => handshakesIn(l) >= DEVICES))).toBe(DEVICES);
    for (let i = 0; i < DEVICES; i += 50) {
      const ok = await Promise.all(devices.slice(i, i + 50).map((d, j) => observe(d, i + j)));
      expect(ok.every(Boolean)).toBe(true);
    }
    expect(await bump(0x7000)).toBe(`2.04 v1 ${DEVICES}`);
    expect(await notLatest('v1')).toEqual([]);
    const before = devices.map((d) => d.notes.length);

    const fresh = await start(['--takeover'], /"msg":"takeover complete"/);
    expect(await old.exited).toBe(0);
    expect(old.log()).toContain(`"sessions":${DEVICES}`);
    expect(fresh.log()).toContain(`"sessions":${DEVICES},"observeRelations":${DEVICES}`);
    expect(fresh.log()).not.toContain('did not say done');
    expect(await everyDevice(2)).toEqual([]);
    // NAT rebinding after the takeover: the CID finds each session in the new process (RFC 9146 6).
    const portsBefore = cidDevices.map((d) => d.socket.address().port);
    for (const d of cidDevices) await rebind(d);
    expect(cidDevices.filter((d, i) => d.socket.address().port === portsBefore[i]).map((d) => d.serial)).toEqual([]);
    expect(await everyDevice(5)).toEqual([]);
    expect((await logged(fresh, (l) => (l.match(/"msg":"peer address changed"/g) ?? []).length >= cidDevices.length)).match(/"msg":"peer address changed"/g)?.length).toBe(cidDevices.length);
    // The new process's handlers stand: its POST /bump reaches all 200 relations, once each.
    // (its value starts from v0 again: the application's state is its own).
    expect(await bump(0x7001)).toBe(`2.04 v1 ${DEVICES}`);
    expect(await notLatest('v1')).toEqual([]);
    expect(devices.filter((d, i) => d.notes.length <= before[i]! + 1).map((d) => d.serial)).toEqual([]);
    expect(observeBroken()).toEqual([]);
    expect(handshakesIn(fresh.log())).toBe(0);
    current = fresh;
  }, 240_000);

  it('a successor that dies before acknowledging leaves the server serving every device', async () => {
    expect(current).toBeDefined();
    // A real process that says hello, waits for the sealed state, and dies without `ready`.
    const path = join(runtimeDir, 'coap-psk', `takeover-${LOOPBACK}-${port}.sock`);
    const quitter = spawn(process.execPath, ['-e', `
      const s = require('node:net').connect(${JSON.stringify(path)});
      const hello = Buffer.concat([Buffer.from([1, 0, 0, 0, 33, 1]), require('node:crypto').randomBytes(32)]);
      s.on('connect', () => s.write(hello));
      let got = 0;
      s.on('data', (d) => { got += d.length; if (got > 5 && d[0] === 2) process.exit(3); });
      setTimeout(() => process.exit(4), 20000);
    `], { stdio: 'ignore' });
    children.push(quitter);
    const code = await new Promise<number | null>((done) => quitter.on('exit', (c) => done(c)));
    expect(code).toBe(3); // it did receive the state frame
    expect(await logged(current, (l) => /takeover failed; still serving/.test(l), 15_000)).toMatch(/takeover failed; still serving/);
    expect(current.child.exitCode).toBeNull();
    expect(await everyDevice(3)).toEqual([]);
    // Its relations go on too, numbered past whatever the successor may have sent.
    expect(await bump(0x7002)).toBe(`2.04 v2 ${DEVICES}`);
    expect(await notLatest('v2')).toEqual([]);
    expect(observeBroken()).toEqual([]);
    expect(handshakesIn(current.log())).toBe(0);
  }, 120_000);

  it('a second plain serve on the port still fails EADDRINUSE (the first binds with SO_REUSEPORT)', async () => {
    const child = spawn(process.execPath, [BIN, 'serve'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
    expect(code).toBe(1);
    expect(err).toContain(`cannot listen on ${LOOPBACK}:${port}: EADDRINUSE`);
    expect(current.child.exitCode).toBeNull();
  }, 60_000);

  it('serve --takeover with no server on the listener fails with one line and exit 1', async () => {
    const otherPort = await freeUdpPort();
    const child = spawn(process.execPath, [BIN, 'serve', '--takeover'], { env: { ...env(), COAP_PSK_PORT: String(otherPort) }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
    expect(code).toBe(1);
    expect(err).toMatch(/takeover: no running server to take over at .*takeover-127\.0\.0\.1-\d+\.sock \(ENOENT\)/);
  }, 60_000);
});

describe.skipIf(NO_REUSE_PORT)(`graceful restart: SIGUSR2${SKIP_REASON}`, () => {
  const mine: Device[] = [];
  let successorPid: number | undefined;
  afterAll(() => {
    for (const d of mine) d.socket.close();
    if (successorPid) {
      try {
        process.kill(successorPid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('SIGUSR2 starts serve --takeover with the same argv and environment; the sessions go on', async () => {
    port = await freeUdpPort();
    const old = await start([], /"msg":"coap-psk serving/);
    for (let i = 0; i < 5; i++) mine.push(await connect(`SN-USR2-${i}`));
    const saved = devices.splice(0, devices.length, ...mine);
    try {
      expect(await everyDevice(1)).toEqual([]);
      old.child.kill('SIGUSR2');
      expect(await old.exited).toBe(0);
      // The successor wrote into the same pipe, which it still holds.
      const log = await logged(old, (l) => /"msg":"takeover complete"/.test(l));
      successorPid = (JSON.parse(/\{[^\n]*"msg":"SIGUSR2: starting the successor[^\n]*\}/.exec(log)![0]) as { pid: number }).pid;
      expect(log).toMatch(/"msg":"takeover complete"/);
      expect(await everyDevice(2)).toEqual([]);
      expect(handshakesIn(old.log())).toBe(5);
    } finally {
      devices.splice(0, devices.length, ...saved);
    }
  }, 120_000);
});
