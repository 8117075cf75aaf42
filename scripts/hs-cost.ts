/**
 * Server CPU per full handshake under pion-load's handshake pattern (fresh socket, cookie
 * exchange, full PSK handshake with a new serial, one CON GET, close_notify), measured inside
 * the server process: `coap-psk serve`'s own code (runServe from `<root>/dist`, defaults, log
 * level info to stderr, the key cache on) runs here, pinned to core 0. After `--warm`
 * handshakes, `--windows` windows of `--per` handshakes each are timed with process.cpuUsage()
 * (every thread of the process: the event loop, libuv's pool, GC helpers).
 *
 *   npm run build && npx tsx scripts/hs-cost.ts [--generator pion|inproc] [--root DIR]
 *       [--keys softhsm|software] [--warm 3000] [--windows 5] [--per 2000] [--pion BIN]
 *       [--client-root DIR] [--alloc-profile FILE] 2>/dev/null
 *
 * Generators:
 *   pion    pion-load (scripts/bench/pion-load) on core 1, over loopback, 16 handshakes in flight:
 *           the figure is the whole server's, its datagram sends and receives included.
 *   inproc  the project's DTLS client (`<client-root>/dist/dtls/client.js`) in this process, 16
 *           sessions at a time, their datagrams handed to DtlsServer.onDatagram() and back in
 *           memory: no socket, no other process, no kernel. The line gives the process's CPU
 *           and the client's share of it (timed around each client call); the server's is the
 *           rest. The least noisy way to compare two builds on a shared machine: give both runs
 *           the same `--client-root`, so that only the server differs.
 *
 * `--root` measures another checkout's dist/ (for before/after in the same minute); the log
 * lines go to stderr, as `serve` writes them. `node --cpu-prof --import tsx scripts/hs-cost.ts`
 * profiles the same run. Prints one line per window and the lowest and median µs per handshake.
 */
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestToken, type TestToken } from '../test/helpers/softhsm.js';
import { coapGet } from '../test/helpers/coap-bytes.js';
import { buildPionLoad } from './bench/pion.js';
import type { CoapPskServer } from '../src/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MASTER_HEX = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'; // a bench-only test key
const IN_FLIGHT = 16;
const argv = process.argv.slice(2);
const option = (flag: string, fallback: string): string => {
  const at = argv.indexOf(flag);
  return at >= 0 && argv[at + 1] !== undefined ? argv[at + 1]! : fallback;
};
const generator = option('--generator', 'pion');
const root = path.resolve(option('--root', ROOT));
const clientRoot = path.resolve(option('--client-root', root));
const keys = option('--keys', 'softhsm');
const warm = Number(option('--warm', '3000'));
const windows = Number(option('--windows', '5'));
const per = Number(option('--per', '2000'));
/** `--alloc-profile FILE`: V8's sampling heap profile of the windows, collected objects included (DevTools' .heapprofile). */
const allocProfile = option('--alloc-profile', '');

/** This process on core 0, as the bench pins its servers; pion-load goes to core 1. */
execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

let token: TestToken | undefined;
const env: NodeJS.ProcessEnv = { COAP_PSK_KEY_ENCODING: 'raw', COAP_PSK_LOG_LEVEL: 'info', COAP_PSK_CACHE_MAX: '10000', COAP_PSK_PKCS11_SYNC: 'true' };
if (keys === 'software') env.COAP_PSK_MASTER_KEY_HEX = MASTER_HEX;
else {
  token = await createTestToken({ label: 'hs-cost', pin: 'hs-cost-pin', keys: [{ label: 'bench-master', hex: MASTER_HEX }] });
  Object.assign(env, token.env);
  process.env.SOFTHSM2_CONF = token.confPath; // SoftHSM reads it from this process's environment
}

const { runServe } = (await import(path.join(root, 'dist/cli/serve.js'))) as typeof import('../src/cli/serve.js');
const server = (await runServe({ flags: { host: '127.0.0.1', port: '0' }, handleSignals: false }, { ...process.env, ...env }))!;

const inspector = new Session();
async function startAllocationSampling(): Promise<void> {
  inspector.connect();
  await inspector.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}

/** A mark at the warm-up's end and after each window: the process's CPU and the client's share. */
const marks: Array<{ cpu: NodeJS.CpuUsage; clientNs: number; at: number }> = [];
const goal = warm + windows * per;
let ok = 0;
let clientNs = 0;
let reached: () => void;
const finished = new Promise<void>((r) => (reached = r));
server.on('handshake', (e) => {
  if (e.result !== 'ok') return;
  ok++;
  if (ok < warm || (ok - warm) % per !== 0) return;
  if (ok === warm && allocProfile) void startAllocationSampling();
  marks.push({ cpu: process.cpuUsage(), clientNs, at: performance.now() });
  if (ok === goal) reached();
});

const bound = setTimeout(() => reached(), 300_000);
if (generator === 'inproc') await runInProcess(server, finished);
else await runPion(server, finished);
clearTimeout(bound);
if (allocProfile) writeFileSync(allocProfile, JSON.stringify((await inspector.post('HeapProfiler.stopSampling')).profile));
report();
await server.close();
await token?.cleanup();
process.exit(0);

/** pion-load on core 1 against the bound socket, until the last window closes. */
async function runPion(s: CoapPskServer, done: Promise<void>): Promise<void> {
  const pion = option('--pion', '') ? { bin: option('--pion', ''), cleanup: () => {} } : buildPionLoad(ROOT);
  const port = s.dtls['socket']!.address().port;
  const child = spawn('taskset', ['-c', '1', pion.bin, '-phase', 'handshakes', '-port', String(port), '-seconds', '600', '-concurrency', String(IN_FLIGHT),
    '-prefix', `HC${process.pid}-`, '-path', 'whoami'], { env: { ...process.env, BENCH_MASTER_HEX: MASTER_HEX }, stdio: 'ignore' });
  await done;
  child.kill('SIGTERM');
  pion.cleanup();
}

/**
 * IN_FLIGHT client sessions at a time in this process, each from an address of its own (as
 * pion-load's devices): handshake, one CON GET, close_notify, then the next. Datagrams both ways
 * wait in one queue, served in order; between rounds the event loop runs (the key lookup's
 * promise, the log's writes).
 */
async function runInProcess(s: CoapPskServer, done: Promise<void>): Promise<void> {
  type Client = import('../src/dtls/client.js').DtlsClientSession;
  const { DtlsClientSession } = (await import(path.join(clientRoot, 'dist/dtls/client.js'))) as typeof import('../src/dtls/client.js');
  const { deriveSoftware } = (await import(path.join(clientRoot, 'dist/keys/derive.js'))) as typeof import('../src/keys/derive.js');
  const master = Buffer.from(MASTER_HEX, 'hex');
  const queue: Array<() => void> = [];
  const clients = new Map<string, Client>();
  const timed = (f: () => void): void => {
    const t = process.hrtime.bigint();
    f();
    clientNs += Number(process.hrtime.bigint() - t);
  };
  const socket = s.dtls['socket']!;
  socket.send = ((d: Buffer, port: number, address: string) => {
    const c = clients.get(`${address}|${port}`);
    if (c) queue.push(() => timed(() => c.onDatagram(d)));
  }) as typeof socket.send;
  let n = 0;
  let running = true;
  const startOne = (): void => {
    const i = ++n;
    const address = `127.2.${(i >> 8) & 0xff}.${i & 0xff}`;
    const port = 10_000 + (i % 50_000);
    const key = `${address}|${port}`;
    const serial = `IP${process.pid}-${i}`;
    const session = new DtlsClientSession({ identity: serial, psk: deriveSoftware(master, Buffer.from(serial)) }, (d) => {
      queue.push(() => s.dtls.onDatagram(d, address, port));
    });
    clients.set(key, session);
    session.once('established', () => session.send(coapGet(i & 0xffff, ['whoami'])));
    session.onData = () => {
      session.close(true);
      clients.delete(key);
      if (running) startOne();
    };
    timed(() => session.start());
  };
  void done.then(() => (running = false));
  for (let i = 0; i < IN_FLIGHT; i++) startOne();
  while (running) {
    for (let q = queue.shift(); q; q = queue.shift()) q();
    await new Promise((r) => setImmediate(r));
  }
}

function report(): void {
  const totals: number[] = [];
  const servers: number[] = [];
  for (let i = 1; i < marks.length; i++) {
    const [a, b] = [marks[i - 1]!, marks[i]!];
    const us = (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system) / per;
    const clientUs = (b.clientNs - a.clientNs) / 1000 / per;
    const seconds = (b.at - a.at) / 1000;
    totals.push(us);
    servers.push(us - clientUs);
    const share = generator === 'inproc' ? ` (client ${clientUs.toFixed(1)}, server ${(us - clientUs).toFixed(1)})` : '';
    process.stdout.write(`window ${i}: ${us.toFixed(1)} µs CPU per handshake${share}, ${Math.round(per / seconds)}/s\n`);
  }
  const stats = (xs: number[]): string => {
    const sorted = [...xs].sort((x, y) => x - y);
    return `min ${sorted[0]?.toFixed(1)} median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)}`;
  };
  // The client's share is wall time around its calls: right only while nothing else runs on this core.
  const server = generator === 'inproc' ? `, server alone ${stats(servers)}` : '';
  process.stdout.write(`${path.basename(root)} ${keys} ${generator}: ${stats(totals)} µs CPU per handshake${server}, load ${os.loadavg()[0]!.toFixed(2)}\n`);
}
