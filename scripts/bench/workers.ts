/**
 * `npm run bench -- --workers [--quick]`: `coap-psk serve --workers 1` against `--workers 2`
 * under the same generator (./load.ts): the aggregate rates, and the server's CPU per request
 * and per handshake (the whole process tree: primary and workers, from /proc).
 *
 * What a 2-core machine can show: the generator needs a core of its own to load even one
 * worker, so two workers share the cores with it. The closed-loop rates are therefore capped by
 * the generator (the table says so when its core is saturated) and cannot show the scaling a
 * machine with spare cores would; what this machine can show is the cost side: at the same
 * open-loop request rate, and per handshake, what one request or handshake costs the server
 * with one worker and with two (issue 14: not more than 10 % more). Two workers are measured
 * twice: on core 0 alone, the core budget of one worker (what splitting into processes costs),
 * and on cores 0 and 1, the second shared with the generator (what this machine adds to that).
 *
 * Workers need Node 22.12+: the servers run on this Node when it has reusePort, otherwise on the
 * Node 24 of .ci/node24 (installed by `npm run test:node24`), or on BENCH_NODE.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { reusePortSupported } from '../../src/cluster/support.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { createTestToken } from '../../test/helpers/softhsm.js';
import { freeUdpPort } from '../../test/helpers/ports.js';
import { closeSession, establish, handshake, runHandshakes, runRequests, type Target } from './load.js';
import { cpuSeconds } from './procs.js';

const MASTER_HEX = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'; // a bench-only test key
const MASTER = Buffer.from(MASTER_HEX, 'hex');
const WHOAMI = ['whoami'];

export interface WorkersBenchOptions {
  root: string;
  quick: boolean;
  say: (s: string) => void;
}

interface Row {
  workers: number;
  cores: string;
  requests: { perSecond: number; usPerRequest: number; genCpu: number };
  paced: { rate: number; perSecond: number; usPerRequest: number; p99: number };
  handshakes: { perSecond: number; usPerHandshake: number; genCpu: number };
  pacedHandshakes: { rate: number; perSecond: number; usPerHandshake: number };
}

/** Every process whose parent chain leads to `root` (the primary and its workers), root included. */
function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [root];
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) if (tree.includes(ppid) && !tree.includes(pid)) (tree.push(pid), (grew = true));
  }
  return tree;
}

const treeCpu = (pids: number[]): number => pids.reduce((sum, pid) => sum + (cpuSeconds(pid) || 0), 0);

function serverNode(root: string): string | undefined {
  if (process.env.BENCH_NODE) return process.env.BENCH_NODE;
  if (reusePortSupported()) return process.execPath;
  const ci = path.join(root, '.ci/node24/node_modules/.bin/node');
  return existsSync(ci) ? ci : undefined;
}

/**
 * `coap-psk serve --workers N` on `cores`; resolves once `ready` succeeds (a handshake: at log
 * level warn, as the main bench runs the server, there is no "serving" line to wait for).
 */
async function startServe(node: string, root: string, workers: number, cores: string, env: NodeJS.ProcessEnv, ready: (port: number) => Promise<boolean>): Promise<{ child: ChildProcess; port: number; stop(): Promise<void> }> {
  const port = await freeUdpPort();
  const child = spawn('taskset', ['-c', cores, node, path.join(root, 'bin/coap-psk.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--log-format', 'json'], {
    env, stdio: ['ignore', 'ignore', 'pipe'],
  });
  const life = setTimeout(() => child.kill('SIGKILL'), 600_000);
  life.unref();
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString('latin1')).slice(-20_000)));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async () => {
    clearTimeout(life);
    if (exited()) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 300 && !exited(); i++) await new Promise((r) => setTimeout(r, 50));
    if (!exited()) child.kill('SIGKILL');
  };
  for (let i = 0; i < 60; i++) {
    if (exited()) throw new Error(`coap-psk serve --workers ${workers} exited: ${log.trim().split('\n').pop()}`);
    if (await ready(port)) return { child, port, stop };
    await new Promise((r) => setTimeout(r, 500));
  }
  await stop();
  throw new Error(`coap-psk serve --workers ${workers} did not answer a handshake in 60 s`);
}

/** What the server tree spent per unit of `body`'s work, over the same wall time. */
async function perUnit<T extends { seconds: number; perSecond: number }>(pids: number[], body: () => Promise<T>): Promise<{ run: T; us: number }> {
  const c0 = treeCpu(pids);
  const run = await body();
  const cpu = treeCpu(pids) - c0;
  return { run, us: (cpu / (run.perSecond * run.seconds)) * 1e6 };
}

async function measure(o: WorkersBenchOptions, node: string, env: NodeJS.ProcessEnv, workers: number, cores: string, pacedRate: number, handshakeRate: number): Promise<Row> {
  const seconds = o.quick ? 4 : 10;
  const sessionsWanted = o.quick ? 300 : 1000;
  o.say(`workers ${workers} on cores ${cores}`);
  const targetAt = (port: number): Target => ({ port, pskFor: (s) => deriveSoftware(MASTER, Buffer.from(s, 'utf8')), path: WHOAMI });
  // Every worker must serve before the load starts: probe until `workers` handshakes from as
  // many source addresses have succeeded in a row (the kernel spreads them over the workers).
  const ready = async (port: number) => {
    const probes = await Promise.all(Array.from({ length: 4 * workers }, (_, i) => handshake(targetAt(port), `probe-${i}`, 1500)));
    for (const p of probes) if (p) closeSession(p);
    return probes.every(Boolean);
  };
  const srv = await startServe(node, o.root, workers, cores, env, ready);
  try {
    const pids = processTree(srv.child.pid!);
    const target = targetAt(srv.port);
    const sessions = await establish(target, sessionsWanted, `WK${workers}-`, 32, 120_000);
    o.say(`  ${sessions.length} sessions`);
    await runRequests(sessions, WHOAMI, { seconds: o.quick ? 3 : 6, concurrency: 32 }); // warm-up, not recorded
    const closed = await perUnit(pids, () => runRequests(sessions, WHOAMI, { seconds, concurrency: 32 }));
    o.say(`  closed loop ${Math.round(closed.run.perSecond)}/s, ${closed.us.toFixed(1)} µs/request`);
    const paced = await perUnit(pids, () => runRequests(sessions, WHOAMI, { seconds, concurrency: 0, ratePerSecond: pacedRate }));
    o.say(`  open loop ${Math.round(paced.run.perSecond)}/s, ${paced.us.toFixed(1)} µs/request`);
    for (const s of sessions) closeSession(s, false);
    await runHandshakes(target, { seconds: o.quick ? 2 : 4, concurrency: 16, prefix: `WKH${workers}w-` }); // warm-up
    const hs = await perUnit(pids, () => runHandshakes(target, { seconds, concurrency: 16, prefix: `WKH${workers}-` }));
    o.say(`  handshakes ${Math.round(hs.run.perSecond)}/s, ${hs.us.toFixed(1)} µs/handshake`);
    const pacedHs = await perUnit(pids, () => runHandshakes(target, { seconds, concurrency: 16, prefix: `WKP${workers}-${cores}-`, ratePerSecond: handshakeRate }));
    o.say(`  handshakes open loop ${Math.round(pacedHs.run.perSecond)}/s, ${pacedHs.us.toFixed(1)} µs/handshake`);
    return {
      workers,
      cores,
      requests: { perSecond: closed.run.perSecond, usPerRequest: closed.us, genCpu: closed.run.genCpu },
      paced: { rate: pacedRate, perSecond: paced.run.perSecond, usPerRequest: paced.us, p99: paced.run.p99 },
      handshakes: { perSecond: hs.run.perSecond, usPerHandshake: hs.us, genCpu: hs.run.genCpu },
      pacedHandshakes: { rate: handshakeRate, perSecond: pacedHs.run.perSecond, usPerHandshake: pacedHs.us },
    };
  } finally {
    await srv.stop();
  }
}

const n0 = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (n: number) => `${Math.round(n * 100)}%`;

/** Runs both and returns the Markdown lines of the report. */
export async function benchWorkers(o: WorkersBenchOptions): Promise<string[]> {
  const node = serverNode(o.root);
  if (!node) return ['Workers phase skipped: it needs Node.js 22.12+ for the servers; run `npm run test:node24` once (installs .ci/node24) or set BENCH_NODE.'];
  const token = await createTestToken({ label: 'bench-workers', pin: 'bench-pin', keys: [{ label: 'bench-master', hex: MASTER_HEX }] });
  const env: NodeJS.ProcessEnv = {
    ...process.env, ...token.env, COAP_PSK_KEY_ENCODING: 'raw', COAP_PSK_LOG_LEVEL: 'warn', COAP_PSK_PKCS11_SYNC: 'true',
  };
  const pacedRate = o.quick ? 2000 : 3000;
  const handshakeRate = o.quick ? 300 : 500;
  try {
    // One worker on core 0 (as the main bench runs servers); two on that same core, which
    // separates what splitting the server into processes costs from what sharing a core with
    // the generator costs; two on both cores, where the generator (this process, on core 1)
    // also runs.
    const one = await measure(o, node, env, 1, '0', pacedRate, handshakeRate);
    const same = await measure(o, node, env, 2, '0', pacedRate, handshakeRate);
    const two = await measure(o, node, env, 2, '0,1', pacedRate, handshakeRate);
    const ratio = (a: number, b: number) => (b / a).toFixed(2);
    const version = `node ${execFileSync(node, ['--version']).toString().trim()}`; // the servers' Node, maybe not this one
    const row = (label: string, cell: (r: Row) => string, value: (r: Row) => number) =>
      `| ${label} | ${cell(one)} | ${cell(same)} | ${cell(two)} | ${ratio(value(one), value(same))} | ${ratio(value(one), value(two))} |`;
    const gen = (share: number) => ` (gen ${pct(share)})`;
    return [
      `Workers (\`npm run bench -- --workers${o.quick ? ' --quick' : ''}\`, servers on ${version}; generator on core 1, one DTLS client process; CPU of primary and workers from /proc):`,
      '',
      '| | `--workers 1` (core 0) | `--workers 2` (both on core 0) | `--workers 2` (cores 0,1, shared with the generator) | 2 on 0 / 1 | 2 on 0,1 / 1 |',
      '|---|---:|---:|---:|---:|---:|',
      row('CON GET requests/s, closed loop, 32 outstanding', (r) => n0(r.requests.perSecond) + gen(r.requests.genCpu), (r) => r.requests.perSecond),
      row('server CPU per request, closed loop', (r) => `${r.requests.usPerRequest.toFixed(1)} µs`, (r) => r.requests.usPerRequest),
      row(`server CPU per request at ${n0(pacedRate)}/s open loop (p99 ms)`, (r) => `${r.paced.usPerRequest.toFixed(1)} µs (${r.paced.p99.toFixed(2)})`, (r) => r.paced.usPerRequest),
      row('full handshakes/s, 16 in flight', (r) => n0(r.handshakes.perSecond) + gen(r.handshakes.genCpu), (r) => r.handshakes.perSecond),
      row('server CPU per handshake, closed loop', (r) => `${r.handshakes.usPerHandshake.toFixed(1)} µs`, (r) => r.handshakes.usPerHandshake),
      row(`server CPU per handshake at ${n0(handshakeRate)}/s open loop`, (r) => `${r.pacedHandshakes.usPerHandshake.toFixed(1)} µs`, (r) => r.pacedHandshakes.usPerHandshake),
      '',
      'gen: CPU share of one core used by the generator; near 100 % the rate is the generator\'s, not the server\'s.',
    ];
  } finally {
    await token.cleanup();
  }
}
