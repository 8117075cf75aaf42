/**
 * A server started through a wrapper must not outlive it (issue 16, item 3): kill -TERM to the
 * pid of `npm start` or `npx coap-psk serve` used to end the wrapper only, leaving the server
 * re-parented to init and holding its port. The server now stops when its parent goes away,
 * however the parent went; a port already taken fails the start with a hint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestToken, createTestToken } from '../helpers/softhsm.js';
import { freeUdpPort } from '../helpers/ports.js';
import { MASTER_HEX } from '../keys/vectors.js';
import { BIN, runCli } from './run.js';

let token: TestToken;
let dir: string;
const started: ChildProcess[] = [];
const serverPids: number[] = [];

beforeAll(async () => {
  token = await createTestToken({ label: 'signal-test', pin: '1357', keys: [{ label: 'k1', hex: MASTER_HEX }] });
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-signals-'));
});
afterAll(async () => {
  for (const pid of serverPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await token?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Running, that is: neither gone nor a zombie waiting for whichever process adopted it. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Starts a wrapper whose descendant serves; resolves with the server's pid (from its log line). */
async function startWrapped(cmd: string, args: string[], cwd: string, port: number): Promise<{ wrapper: ChildProcess; serverPid: number; log: () => string }> {
  const wrapper = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...token.env, COAP_PSK_HOST: '127.0.0.1', COAP_PSK_PORT: String(port), COAP_PSK_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(wrapper);
  let log = '';
  wrapper.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  wrapper.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const serverPid = await new Promise<number>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no server in 60 s:\n${log}`)), 60_000);
    const check = (): void => {
      const m = /\{[^\n]*"msg":"coap-psk serving[^\n]*\}/.exec(log);
      if (!m) return;
      clearTimeout(timer);
      done((JSON.parse(m[0]) as { pid: number }).pid);
    };
    wrapper.stdout!.on('data', check);
    wrapper.stderr!.on('data', check);
  });
  serverPids.push(serverPid);
  expect(serverPid).not.toBe(wrapper.pid);
  return { wrapper, serverPid, log: () => log };
}

/** Polls until the pid is gone; false after timeoutMs. */
async function gone(pid: number, timeoutMs = 20_000): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; ) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !alive(pid);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => done(false));
    s.bind(port, '127.0.0.1', () => s.close(() => done(true)));
  });
}

describe('the server ends with its wrapper', () => {
  it('kill -TERM to `npx coap-psk serve` ends the server and frees the port', async () => {
    const port = await freeUdpPort();
    const { wrapper, serverPid, log } = await startWrapped('npx', ['--no-install', 'coap-psk', 'serve'], resolve('.'), port);
    process.kill(wrapper.pid!, 'SIGTERM');
    expect(await gone(serverPid), log()).toBe(true);
    expect(await portFree(port)).toBe(true);
  }, 90_000);

  it('kill -TERM to `npm start` (a package whose start script serves) ends the server', async () => {
    const port = await freeUdpPort();
    const pkg = join(dir, 'app');
    await import('node:fs/promises').then((fs) => fs.mkdir(pkg));
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'app', private: true, scripts: { start: `node ${JSON.stringify(BIN)} serve` } }));
    const { wrapper, serverPid } = await startWrapped('npm', ['start'], pkg, port);
    process.kill(wrapper.pid!, 'SIGTERM');
    expect(await gone(serverPid)).toBe(true);
  }, 90_000);

  it('a parent killed with SIGKILL (no chance to pass a signal on) still ends the server', async () => {
    const port = await freeUdpPort();
    // `; :` keeps bash from exec-ing node, so node's parent is this bash.
    const { wrapper, serverPid } = await startWrapped('bash', ['-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} serve; :`], dir, port);
    process.kill(wrapper.pid!, 'SIGKILL');
    expect(await gone(serverPid)).toBe(true);
  }, 90_000);
});

it('a port in use fails the start with one line and a hint', async () => {
  const port = await freeUdpPort();
  const holder = dgram.createSocket('udp4');
  await new Promise<void>((r) => holder.bind(port, '127.0.0.1', () => r()));
  try {
    const r = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port)], { COAP_PSK_MASTER_KEY_HEX: MASTER_HEX, COAP_PSK_LOG_LEVEL: 'error' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`coap-psk: cannot listen on 127.0.0.1:${port}: EADDRINUSE (another server already listens on udp/${port}: stop it, or choose another port with --port / COAP_PSK_PORT)\n`);
  } finally {
    holder.close();
  }
}, 60_000);
