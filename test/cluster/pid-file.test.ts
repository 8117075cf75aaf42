/**
 * `--pid-file` (COAP_PSK_PID_FILE, listener.pidFile), real processes: what systemd's PIDFile=
 * relies on (deploy/systemd/coap-psk-takeover.service). There is no systemd here: the tests
 * check the file, at the moments systemd reads it. Written once serving and removed at a clean
 * stop; a second start on a taken port leaves the first's file alone; an unwritable path fails
 * the start with one line. On Node 22.12+ (graceful restart): when the old process of a takeover
 * exits (the moment systemd reads the file again), it already names the successor, by
 * `--takeover` and by SIGUSR2; a successor that named itself and died before `ready` leaves the
 * file naming the old process again, which serves on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../cli/run.js';
import { freeUdpPort, LOOPBACK } from '../helpers/ports.js';
import { createTestToken, type TestToken } from '../helpers/softhsm.js';
import { MASTER_HEX } from '../keys/vectors.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';

let token: TestToken;
let dir: string;
const children: ChildProcess[] = [];
const extraPids: number[] = [];

interface Server {
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
  /** The PID file's text when the process exited (read in its exit event, as systemd would). */
  atExit: Promise<string | undefined>;
}

function env(port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env, ...token.env, COAP_PSK_HOST: LOOPBACK, COAP_PSK_PORT: String(port), COAP_PSK_LOG_FORMAT: 'json',
    XDG_RUNTIME_DIR: join(dir, 'run'), RUNTIME_DIRECTORY: '', ...extra,
  };
}

const text = (path: string): string | undefined => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);

function start(args: string[], environment: NodeJS.ProcessEnv, pidFile: string, until: RegExp | null = /"msg":"coap-psk serving/): Promise<Server> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const atExit = new Promise<string | undefined>((done) => child.on('exit', () => done(text(pidFile))));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const server = { child, log: () => log, exited, atExit };
  if (!until) return Promise.resolve(server);
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no ${until} in 60 s:\n${log}`)), 60_000);
    const check = (): void => {
      if (!until.test(log)) return;
      clearTimeout(timer);
      done(server);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      if (!until.test(log)) fail(new Error(`exited before ${until}:\n${log}`));
    });
  });
}

/** Waits (bounded) until `ok()`. */
async function until(ok: () => boolean, ms = 10_000): Promise<boolean> {
  for (const end = Date.now() + ms; !ok() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
  return ok();
}

beforeAll(async () => {
  token = await createTestToken({ label: 'pidfile-test', pin: '1470', keys: [{ label: 'k1', hex: MASTER_HEX }] });
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-pidfile-'));
}, 60_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of extraPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await token?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('serve --pid-file', () => {
  it('names the server while it serves and is gone after a clean stop; a second start on the port leaves it alone', async () => {
    const port = await freeUdpPort();
    const pidFile = join(dir, 'a.pid');
    const server = await start(['--pid-file', pidFile], env(port), pidFile);
    expect(text(pidFile)).toBe(`${server.child.pid}\n`);
    const second = await start(['--pid-file', pidFile], env(port), pidFile, null);
    expect(await second.exited).toBe(1);
    expect(second.log()).toContain('EADDRINUSE');
    expect(text(pidFile)).toBe(`${server.child.pid}\n`);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(text(pidFile)).toBeUndefined();
  }, 90_000);

  it('a path that cannot be written fails the start with one line naming the setting', async () => {
    const port = await freeUdpPort();
    const pidFile = join(dir, 'missing-dir', 'b.pid');
    const server = await start([], env(port, { COAP_PSK_PID_FILE: pidFile }), pidFile, null);
    expect(await server.exited).toBe(1);
    const lines = server.log().trim().split('\n').filter((l) => l.includes('pidFile'));
    expect(lines).toEqual([`coap-psk: config listener.pidFile: cannot write ${pidFile} (ENOENT)`]);
  }, 60_000);
});

describe.skipIf(NO_REUSE_PORT)(`serve --pid-file across a graceful restart${SKIP_REASON}`, () => {
  it('serve --takeover: when the old process exits, the file already names the successor; a clean stop removes it', async () => {
    const port = await freeUdpPort();
    const pidFile = join(dir, 'c.pid');
    const old = await start(['--pid-file', pidFile], env(port), pidFile);
    const fresh = await start(['--pid-file', pidFile, '--takeover'], env(port), pidFile, /"msg":"takeover complete"/);
    expect(await old.exited).toBe(0);
    expect(await old.atExit).toBe(`${fresh.child.pid}\n`);
    expect(text(pidFile)).toBe(`${fresh.child.pid}\n`);
    fresh.child.kill('SIGTERM');
    expect(await fresh.exited).toBe(0);
    expect(text(pidFile)).toBeUndefined();
  }, 90_000);

  it('SIGUSR2: the successor started by the server names itself before the old one exits', async () => {
    const port = await freeUdpPort();
    const pidFile = join(dir, 'd.pid');
    const old = await start([], env(port, { COAP_PSK_PID_FILE: pidFile }), pidFile);
    old.child.kill('SIGUSR2');
    expect(await old.exited).toBe(0);
    const line = /\{[^\n]*"msg":"SIGUSR2: starting the successor[^\n]*\}/.exec(old.log());
    const successor = (JSON.parse(line![0]) as { pid: number }).pid;
    extraPids.push(successor);
    expect(await old.atExit).toBe(`${successor}\n`);
    process.kill(successor, 'SIGTERM');
    expect(await until(() => text(pidFile) === undefined)).toBe(true);
  }, 90_000);

  it('a successor that named itself and died before ready: the old process names itself again and serves on', async () => {
    const port = await freeUdpPort();
    const pidFile = join(dir, 'e.pid');
    const old = await start(['--pid-file', pidFile], env(port), pidFile);
    const path = join(dir, 'run', 'coap-psk', `takeover-${LOOPBACK}-${port}.sock`);
    // As a successor does: its PID into the file, hello (format 2), then it dies on the state frame.
    const quitter = spawn(process.execPath, ['-e', `
      require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, process.pid + '\\n');
      const s = require('node:net').connect(${JSON.stringify(path)});
      const hello = Buffer.concat([Buffer.from([1, 0, 0, 0, 33, 2]), require('node:crypto').randomBytes(32)]);
      s.on('connect', () => s.write(hello));
      s.on('data', (d) => { if (d[0] === 2) process.exit(3); });
      setTimeout(() => process.exit(4), 20000);
    `], { stdio: 'ignore' });
    children.push(quitter);
    expect(await new Promise<number | null>((done) => quitter.on('exit', (c) => done(c)))).toBe(3);
    expect(await until(() => /takeover failed; still serving/.test(old.log()))).toBe(true);
    expect(await until(() => text(pidFile) === `${old.child.pid}\n`)).toBe(true);
    expect(old.child.exitCode).toBeNull();
    old.child.kill('SIGTERM');
    expect(await old.exited).toBe(0);
    expect(text(pidFile)).toBeUndefined();
  }, 90_000);
});

