/**
 * `npm run bench [-- --quick] [-- --profile DIR] [-- --semi-space-mb N] [-- --soak] [-- --isolation]`: this server against
 * libcoap's coap-server-openssl and pion/dtls's Go server, under two load generators: the
 * project's own DTLS client (scripts/bench/load.ts) and an independent one in Go on pion/dtls
 * (scripts/bench/pion-load, built here offline), on 127.0.0.1. The servers run on core 0, the
 * generators (this process, pion-load) on core 1.
 *
 * The headline is server CPU per operation (server CPU time over the window / operations
 * completed): it holds whatever caps the rate, the generator included.
 *
 * Phases: `coap-psk derive` through SoftHSM; the null responder (the generator's ceiling); this
 * server with the HSM cache off, then on; libcoap; the same CoAP requests without DTLS (coap://)
 * on node:dgram alone, node-coap as shipped and libcoap (what the layers under a handler cost);
 * isolation under 50 ms of HSM latency. Each server is warmed up before it is measured, and each
 * request phase runs on a fresh process.
 *
 * Then, with pion-load: each server's handshake pattern (fresh socket, handshake, one CON GET,
 * close_notify) and requests over 200 sessions, and a reconnect storm (10,000 distinct serials,
 * HSM cache off, on a fresh process: the time until all are connected).
 *
 * `-- --soak [--soak-seconds N] [--soak-rate R]` runs instead the RSS plateau check
 * (scripts/bench/soak.ts): 1,000 sessions, R requests/s (10,000) for N s (600, at most 720:
 * the server process lives 900 s), RSS every 30 s.
 *
 * `-- --isolation` runs instead the isolation measurement alone (phase 5 below, 20 s loaded, 6 s
 * with --quick) and prints its row.
 *
 * `-- --workers` runs instead `coap-psk serve --workers 1` against `--workers 2`
 * (scripts/bench/workers.ts), with its own table.
 *
 * Prints Markdown tables for the README and, last,
 * `cpu per op vs libcoap: handshakes X requests Y` (libcoap's CPU per op / ours, pion-load's
 * figures; >= 1.0 means this server is cheaper).
 * See scripts/bench/server-child.ts for the null responders and the isolation server.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveSoftware } from '../src/keys/derive.js';
import { createTestToken } from '../test/helpers/softhsm.js';
import { freePortPair, freeUdpPort } from '../test/helpers/ports.js';
import { closePlainPeers, closeSession, establish, openPlainPeers, runHandshakes, runRequests, type HandshakeRun, type RequestChannel, type RequestRun, type Session, type Target } from './bench/load.js';
import { bestOfPion, buildPionLoad, runPion, type PionKey, type PionMeasured } from './bench/pion.js';
import { cpuSeconds, killAllNow, rssKiB, runPinned, startPinned, type ServerProc } from './bench/procs.js';
import { soak } from './bench/soak.js';
import { benchWorkers } from './bench/workers.js';
import { benchResumption } from './bench/resumption.js';
import { benchCompare } from './bench/compare.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * What production runs: the compiled dist/ (bin/coap-psk.js takes it while no file of src/ is
 * newer), not src/ through tsx, whose loader holds every compiled module besides and whose
 * transform wraps every closure a handshake makes in a naming helper (~2 % of a handshake's
 * CPU in a profile; 6-20 % less CPU per handshake compiled, measured under the pion pattern).
 */
function buildDist(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
}
const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const profileAt = argv.indexOf('--profile');
const PROFILE_DIR = profileAt >= 0 ? path.resolve(argv[profileAt + 1] ?? 'bench-profile') : undefined;
const semiAt = argv.indexOf('--semi-space-mb');
/**
 * V8's young generation for this server's processes (--max-semi-space-size, MiB; 0, the
 * default: node's own). Measured under the pion handshake pattern (CONTRIBUTING, pitfalls): a
 * larger nursery gives fewer scavenges but longer ones, the same GC time in total; a smaller
 * one more of them, hardly shorter. Kept as a flag to try it again.
 */
const SEMI_SPACE_MB = semiAt >= 0 ? Number(argv[semiAt + 1]) : 0;
if (!Number.isInteger(SEMI_SPACE_MB) || SEMI_SPACE_MB < 0) throw new Error('--semi-space-mb: a whole number of MiB');
/** `-- --isolation`: the isolation measurement alone (phase 5), its row as a table of its own. */
const ISOLATION_ONLY = argv.includes('--isolation');
/** `-- --soak`: the RSS plateau check alone (scripts/bench/soak.ts), bounded by --soak-seconds. */
const SOAK = argv.includes('--soak');
const numberAfter = (flag: string, fallback: number): number => {
  const at = argv.indexOf(flag);
  const n = at >= 0 ? Number(argv[at + 1]) : fallback;
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: a positive number`);
  return n;
};
const SOAK_SECONDS = Math.min(numberAfter('--soak-seconds', 600), 720);
const SOAK_RATE = numberAfter('--soak-rate', 10_000);
const SERVER_NODE_FLAGS = SEMI_SPACE_MB > 0 ? [`--max-semi-space-size=${SEMI_SPACE_MB}`] : [];

// Every throughput figure is the best of `repeats` runs: the machine may be shared, and other
// load only ever makes a run slower.
const P = QUICK
  ? { seconds: 3, repeats: 2, hsConcurrency: 16, sessions: 1000, idleSessions: 0, reqConcurrency: 32, isoSeconds: 6, isoSessions: 200, deriveSerials: 50_000 }
  : { seconds: 10, repeats: 3, hsConcurrency: 16, sessions: 1000, idleSessions: 11_000, reqConcurrency: 32, isoSeconds: 20, isoSessions: 200, deriveSerials: 500_000 };
/** pion-load: the window, runs per figure, its 200 request sessions, the storm. */
const PION = { seconds: QUICK ? 2 : 10, repeats: QUICK ? 2 : 3, sessions: 200, outstanding: 32, hsConcurrency: 16, stormCount: 10_000, stormConcurrency: 64 };

/**
 * A server written in JavaScript is not at its speed when it starts: V8 compiles the hot paths
 * in the background (on the same pinned core) and the heap grows to its working size. Measured
 * here: `coap-psk serve` answers ~5,000 requests/s in its first second of load and its full rate
 * from the second or third on; handshakes take a few seconds more. Every server gets the same
 * warm-up before each measured phase: one-second windows until two in a row agree within 5 %,
 * at most `WARM_UP.maxSeconds` (a C server is steady after two windows).
 */
const WARM_UP = { window: 1, tolerance: 0.05, maxSeconds: QUICK ? 6 : 20 };

const SERVER_CORE = 0;
const GENERATOR_CORE = 1;
const MASTER_HEX = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'; // a bench-only test key
const MASTER = Buffer.from(MASTER_HEX, 'hex');
const LIBCOAP_KEY = 'bench-libcoap-key'; // static PSK, every identity
const WHOAMI = ['whoami'];
/** Requests/s on established sessions in the isolation measurement (open loop). */
const ISOLATION_RATE = 200;
const TIME = ['time'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const T0 = performance.now();
const say = (s: string) => process.stderr.write(`bench ${((performance.now() - T0) / 1000).toFixed(0).padStart(3)} s: ${s}\n`);
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const pctS = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : 'n/a');

interface Measured<T> {
  run: T;
  serverCpu: number;
}

/**
 * Runs `body` P.repeats times, each with the server's CPU share over the same wall time; keeps
 * the run with the least server CPU per operation (other load on the machine only adds to it).
 */
async function withServerCpu<T extends { seconds: number; perSecond: number }>(srv: ServerProc, body: () => Promise<T>, repeats = P.repeats): Promise<Measured<T>> {
  let best: Measured<T> | undefined;
  for (let i = 0; i < repeats; i++) {
    const c0 = cpuSeconds(srv.pid);
    const run = await body();
    const m = { run, serverCpu: (cpuSeconds(srv.pid) - c0) / run.seconds };
    say(`    ${f0(run.perSecond)}/s (srv ${pctS(m.serverCpu)}, gen ${pctS((run as { genCpu?: number }).genCpu ?? NaN)})`);
    if (!best || cpuPerOp(m) < cpuPerOp(best)) best = m;
  }
  return best!;
}

/** Server CPU seconds per operation: its CPU share over the rate (Infinity for no operation). */
const cpuPerOp = (m: Measured<{ perSecond: number }>): number => (m.run.perSecond > 0 ? m.serverCpu / m.run.perSecond : Infinity);

/** Runs one-second windows of `load` until the rate settles (WARM_UP); nothing is recorded. */
async function warmUp(what: string, load: (seconds: number, window: number) => Promise<{ perSecond: number }>): Promise<void> {
  const t0 = Date.now();
  let previous = NaN;
  for (let w = 0; (Date.now() - t0) / 1000 < WARM_UP.maxSeconds; w++) {
    const { perSecond } = await load(WARM_UP.window, w);
    if (Math.abs(perSecond - previous) <= WARM_UP.tolerance * Math.max(perSecond, previous)) {
      say(`  ${what} warm-up: steady at ${f0(perSecond)}/s after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      return;
    }
    previous = perSecond;
  }
  say(`  ${what} warm-up: not steady after ${WARM_UP.maxSeconds} s (last ${f0(previous)}/s)`);
}

const warmHandshakes = (target: Target): Promise<void> =>
  warmUp('handshake', (seconds, w) => runHandshakes(target, { seconds, concurrency: P.hsConcurrency, prefix: `W${w}-` }));

const warmRequests = (sessions: { session: RequestChannel }[], reqPath: string[]): Promise<void> =>
  warmUp('request', (seconds) => runRequests(sessions, reqPath, { seconds, concurrency: P.reqConcurrency }));

function pinSelf(): void {
  try {
    execFileSync('taskset', ['-pc', String(GENERATOR_CORE), String(process.pid)], { stdio: 'ignore' });
  } catch {
    say('taskset failed: generator not pinned');
  }
}

/** What the isolation server saw of a window: its GC pauses and its event loop's delay. */
interface ServerWindow {
  pauses: number;
  totalMs: number;
  maxMs: number;
  loopDelayP99Ms: number;
}

/**
 * Windows of the isolation server: each call ends the window the previous call began (SIGUSR2)
 * and resolves with what the server printed of it (undefined for the first call, or when no
 * line came within 2 s).
 */
function serverWindows(p: ServerProc): () => Promise<ServerWindow | undefined> {
  let calls = 0;
  return async () => {
    const want = calls++;
    process.kill(p.pid, 'SIGUSR2');
    if (want === 0) return undefined;
    for (let i = 0; i < 40; i++) {
      const lines = p.log().split('\n').filter((l) => l.startsWith('GC {'));
      if (lines.length >= want) return JSON.parse(lines[want - 1]!.slice(3)) as ServerWindow;
      await sleep(50);
    }
    return undefined;
  };
}

async function establishAll(target: Target, count: number, prefix: string): Promise<Session[]> {
  const t0 = Date.now();
  const s = await establish(target, count, prefix, 32, QUICK ? 60_000 : 180_000);
  say(`  ${s.length}/${count} sessions established in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return s;
}

function closeAll(sessions: Session[], notify: boolean): void {
  for (const s of sessions) closeSession(s, notify);
}

/** Requests without DTLS (coap://): what the datagram path and the CoAP libraries cost alone. */
interface FloorResults {
  udpNull?: Measured<RequestRun>;
  nodeCoap?: Measured<RequestRun>;
  libcoapPlain?: Measured<RequestRun>;
}

interface ServerResults {
  hsOff?: Measured<HandshakeRun>;
  hsOn?: Measured<HandshakeRun>;
  req?: Measured<RequestRun>;
  /** The same requests while all the idle sessions of the RSS measurement are established too. */
  reqCrowded?: Measured<RequestRun>;
  crowdedSessions?: number;
  rssPerSession?: number;
  rssSessions?: number;
  isoAlone?: RequestRun;
  isoLoaded?: RequestRun;
  isoHandshakes?: HandshakeRun;
  /** The isolation server's own view of the alone and loaded windows (scripts/bench/isolation-server.mjs). */
  isoAloneServer?: ServerWindow;
  isoLoadedServer?: ServerWindow;
  /** `coap-psk derive` through SoftHSM: serials per second, start-up included. */
  derive?: { serials: number; perSecond: number };
  /** pion-load: fresh socket, handshake, one CON GET, close_notify. */
  pionHs?: PionMeasured;
  /** pion-load: CON GETs over PION.sessions sessions. */
  pionReq?: PionMeasured;
  /** pion-load: PION.stormCount serials at once, HSM cache off, fresh process. */
  storm?: PionMeasured;
}

async function main(): Promise<void> {
  pinSelf();
  const started = new Date();
  const token = await createTestToken({ label: 'bench', pin: 'bench-pin', keys: [{ label: 'bench-master', hex: MASTER_HEX }] });
  const procs: ServerProc[] = [];
  const results = { ceiling: {} as ServerResults, ours: {} as ServerResults, libcoap: {} as ServerResults, pion: {} as ServerResults, floor: {} as FloorResults };
  say('building scripts/bench/pion-load (Debian pion/dtls, offline)');
  const pion = buildPionLoad(ROOT);
  let pionRuns = 0;
  const pionArgs = (phase: string, seconds: number, reqPath: string[]) => ['-phase', phase, '-seconds', String(seconds), '-prefix', `P${pionRuns++}-`, '-path', reqPath.join('/'),
    '-concurrency', String(PION.hsConcurrency), '-sessions', String(PION.sessions), '-outstanding', String(PION.outstanding)];
  /** pion-load's handshake pattern on `p`: a one-second run first (the GET and close paths warm), then the measured runs. */
  const pionHandshakes = async (p: ServerProc, key: PionKey, reqPath: string[]): Promise<PionMeasured> => {
    say('  pion-load handshake pattern (fresh socket, handshake, CON GET, close_notify)');
    await runPion(pion.bin, GENERATOR_CORE, p, key, pionArgs('handshakes', 1, reqPath), 60_000);
    return bestOfPion(PION.repeats, () => runPion(pion.bin, GENERATOR_CORE, p, key, pionArgs('handshakes', PION.seconds, reqPath), 120_000), say);
  };
  /**
   * On a fresh process, before the own generator's sessions: libcoap's request cost grows with
   * the sessions it holds (the crowded row), and those sessions end without close_notify.
   * A one-second run first warms the request path up.
   */
  const pionRequests = async (p: ServerProc, key: PionKey, reqPath: string[]): Promise<PionMeasured> => {
    say(`  pion-load requests over ${PION.sessions} sessions`);
    await runPion(pion.bin, GENERATOR_CORE, p, key, pionArgs('requests', 1, reqPath), 120_000);
    return bestOfPion(PION.repeats, () => runPion(pion.bin, GENERATOR_CORE, p, key, pionArgs('requests', PION.seconds, reqPath), 180_000), say);
  };
  const oursKey: PionKey = { masterHex: MASTER_HEX };
  const nullKey: PionKey = { staticPsk: Buffer.from('bench-null-responder-key') };
  const libcoapKey: PionKey = { staticPsk: Buffer.from(LIBCOAP_KEY) };
  const oursTarget = (port: number): Target => ({ port, pskFor: (s) => deriveSoftware(MASTER, Buffer.from(s, 'utf8')), path: WHOAMI });
  const tsx = ['--import', 'tsx'];
  const serveEnv = (cacheMax: number): NodeJS.ProcessEnv => ({
    ...process.env,
    ...token.env,
    COAP_PSK_KEY_ENCODING: 'raw',
    // The defaults: a log line per handshake at info, JSON lines to a pipe.
    COAP_PSK_LOG_LEVEL: 'info',
    COAP_PSK_CACHE_MAX: String(cacheMax),
    // SoftHSM runs inside the server process: derive without the worker-thread hop.
    COAP_PSK_PKCS11_SYNC: 'true',
  });
  /** A server of scripts/bench/server-child.ts (null, udp-null, node-coap) on a free port. */
  const startChild = async (mode: string, name: string = mode): Promise<ServerProc> => {
    const port = await freeUdpPort();
    const p = await startPinned(name, SERVER_CORE, process.execPath, [...tsx, path.join(ROOT, 'scripts/bench/server-child.ts'), mode, String(port)], port, process.env);
    procs.push(p);
    return p;
  };
  /** libcoap's server on a coap:// port and the DTLS port after it; static PSK for every identity. */
  const startLibcoap = async (): Promise<{ p: ServerProc; target: Target; plain: number }> => {
    const plain = await freePortPair();
    const p = await startPinned('libcoap', SERVER_CORE, 'coap-server-openssl', ['-A', '127.0.0.1', '-p', String(plain), '-k', LIBCOAP_KEY, '-v', '0'], plain + 1, process.env);
    procs.push(p);
    return { p, plain, target: { port: plain + 1, pskFor: () => Buffer.from(LIBCOAP_KEY), path: TIME } };
  };
  const serve = async (name: string, cacheMax: number): Promise<ServerProc> => {
    const port = await freeUdpPort();
    const prof = PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${path.join(PROFILE_DIR, name)}`] : []; // one file per thread (tsx runs a loader thread)
    const p = await startPinned(name, SERVER_CORE, process.execPath, [...SERVER_NODE_FLAGS, ...prof, path.join(ROOT, 'bin/coap-psk.js'), 'serve', '--host', '127.0.0.1', '--port', String(port)], port, serveEnv(cacheMax));
    procs.push(p);
    return p;
  };

  // 5. Isolation: 50 ms of HSM latency, a steady stream of new handshakes, requests on
  //    established sessions (open loop, 200/s).
  const measureIsolation = async (): Promise<void> => {
    say('isolation: real server, PKCS#11 resolver + 50 ms');
    const port = await freeUdpPort();
    const p = await startPinned('isolation', SERVER_CORE, process.execPath, [...SERVER_NODE_FLAGS, path.join(ROOT, 'scripts/bench/isolation-server.mjs'), String(port)], port, { ...serveEnv(10_000), BENCH_HSM_DELAY_MS: '50' });
    procs.push(p);
    const target = oursTarget(port);
    const sessions = await establishAll(target, P.isoSessions, 'I-');
    // Warmed as every server is before it is measured: a fresh process's first requests are
    // compiled on the spot, and a 3-s window of 600 requests puts those in its p99.
    await warmRequests(sessions, WHOAMI);
    const rate = ISOLATION_RATE;
    const window = serverWindows(p);
    await window();
    results.ours.isoAlone = await runRequests(sessions, WHOAMI, { seconds: P.isoSeconds / 2, concurrency: 0, ratePerSecond: rate });
    results.ours.isoAloneServer = await window();
    // The handshakes come from a process of their own (on the generator core): made here,
    // their client work would delay this process's reading of replies, and inflate the p99.
    const handshakeStream = runPinned(GENERATOR_CORE, process.execPath, [...tsx, path.join(ROOT, 'scripts/bench/handshake-child.ts'), String(port), String(P.isoSeconds), '16', 'IH-'], { ...process.env, BENCH_MASTER_HEX: MASTER_HEX }, (P.isoSeconds + 60) * 1000);
    const [loaded, hsOut] = await Promise.all([
      runRequests(sessions, WHOAMI, { seconds: P.isoSeconds, concurrency: 0, ratePerSecond: rate }),
      handshakeStream,
    ]);
    results.ours.isoLoadedServer = await window();
    const hs = { ...(JSON.parse(hsOut.trim().split('\n').pop() ?? '{}') as Omit<HandshakeRun, 'latencies'>), latencies: [] };
    results.ours.isoLoaded = loaded;
    results.ours.isoHandshakes = hs;
    closeAll(sessions, false);
    await p.stop();
  };

  buildDist();
  try {
    if (ISOLATION_ONLY) {
      await measureIsolation();
      process.stdout.write(`${isolationTable(results.ours, results.ceiling).join('\n')}\n`);
      return;
    }
    if (SOAK) {
      say(`soak: coap-psk serve, ${SOAK_SECONDS} s at up to ${SOAK_RATE}/s over 1000 sessions, RSS every 30 s`);
      const p = await serve('serve-soak', 10_000);
      const lines = await soak(pion.bin, GENERATOR_CORE, p, oursKey, { seconds: SOAK_SECONDS, rate: SOAK_RATE, sessions: 1000, outstanding: 256, sampleSeconds: 30, say });
      process.stdout.write(`${lines.join('\n')}\n`);
      return;
    }
    // 0. The factory side: `coap-psk derive` of a batch through SoftHSM, as an operator runs it.
    {
      say('coap-psk derive through SoftHSM');
      results.ours.derive = await measureDerive(token.env, P.deriveSerials);
    }

    // 1. The generator's ceiling against the null responder.
    {
      say('null responder (generator ceiling)');
      const p = await startChild('null');
      const target: Target = { port: p.port, pskFor: () => Buffer.from('bench-null-responder-key'), path: WHOAMI };
      await warmHandshakes(target);
      results.ceiling.hsOn = await withServerCpu(p, () => runHandshakes(target, { seconds: P.seconds, concurrency: P.hsConcurrency, prefix: 'N-' }));
      results.ceiling.pionHs = await pionHandshakes(p, nullKey, WHOAMI);
      results.ceiling.pionReq = await pionRequests(p, nullKey, WHOAMI);
      await p.stop();
    }
    {
      say('null responder: requests');
      const p = await startChild('null', 'null-requests');
      const target: Target = { port: p.port, pskFor: () => Buffer.from('bench-null-responder-key'), path: WHOAMI };
      const sessions = await establishAll(target, P.sessions, 'NS-');
      await warmRequests(sessions, WHOAMI);
      results.ceiling.req = await withServerCpu(p, () => runRequests(sessions, WHOAMI, { seconds: P.seconds, concurrency: P.reqConcurrency }));
      // The latency floor of this machine and generator for the isolation row: the same open-loop
      // load on a server that has no HSM and no CoAP layer at all.
      results.ceiling.isoAlone = await runRequests(sessions.slice(0, P.isoSessions), WHOAMI, { seconds: P.isoSeconds / 2, concurrency: 0, ratePerSecond: ISOLATION_RATE });
      closeAll(sessions, false);
      await p.stop();
    }

    // 2. This server, `coap-psk serve` on the SoftHSM token: HSM cache off, then on.
    {
      say('coap-psk serve, COAP_PSK_CACHE_MAX=0');
      const p = await serve('serve-cache-off', 0);
      const target = oursTarget(p.port);
      await warmHandshakes(target);
      results.ours.hsOff = await withServerCpu(p, () => runHandshakes(target, { seconds: P.seconds, concurrency: P.hsConcurrency, prefix: 'OFF-' }));
      await p.stop();
    }
    {
      say('coap-psk serve, cache on (default)');
      const p = await serve('serve-cache-on', 10_000);
      const target = oursTarget(p.port);
      await warmHandshakes(target);
      results.ours.hsOn = await withServerCpu(p, () => runHandshakes(target, { seconds: P.seconds, concurrency: P.hsConcurrency, prefix: 'ON-' }));
      results.ours.pionHs = await pionHandshakes(p, oursKey, WHOAMI);
      await p.stop();
    }
    {
      // Requests on a fresh process, as for every server: what a server did before (tens of
      // thousands of handshakes) changes its request cost, libcoap's by a third (measured).
      say('coap-psk serve, cache on: requests');
      const p = await serve('serve-requests', 10_000);
      results.ours.pionReq = await pionRequests(p, oursKey, WHOAMI);
      await measureSessions(p, oursTarget(p.port), results.ours, 'S-');
      await p.stop();
    }

    // 3. libcoap's coap-server-openssl, static PSK; the client forces TLS_PSK_WITH_AES_128_CCM_8.
    {
      say('coap-server-openssl');
      const { p, target } = await startLibcoap();
      await warmHandshakes(target);
      results.libcoap.hsOn = await withServerCpu(p, () => runHandshakes(target, { seconds: P.seconds, concurrency: P.hsConcurrency, prefix: 'L-' }));
      results.libcoap.pionHs = await pionHandshakes(p, libcoapKey, TIME);
      await p.stop();
    }
    {
      say('coap-server-openssl: requests');
      const { p, target } = await startLibcoap();
      results.libcoap.pionReq = await pionRequests(p, libcoapKey, TIME);
      await measureSessions(p, target, results.libcoap, 'LS-');
      await p.stop();
    }
    {
      // The second anchor: pion/dtls's own server, the same derivation, a trivial responder.
      say('pion/dtls server (Go), trivial responder');
      const port = await freeUdpPort();
      const p = await startPinned('pion-server', SERVER_CORE, pion.bin, ['-phase', 'serve', '-port', String(port)], port, { ...process.env, BENCH_MASTER_HEX: MASTER_HEX });
      procs.push(p);
      results.pion.pionHs = await pionHandshakes(p, oursKey, WHOAMI);
      results.pion.pionReq = await pionRequests(p, oursKey, WHOAMI);
      await p.stop();
    }
    {
      // Every device at once, as after a restart: a cold process, every key from the HSM.
      say(`reconnect storm: ${PION.stormCount} serials, HSM cache off, fresh process`);
      const p = await serve('serve-storm', 0);
      results.ours.storm = await runPion(pion.bin, GENERATOR_CORE, p, oursKey,
        ['-phase', 'storm', '-count', String(PION.stormCount), '-concurrency', String(PION.stormConcurrency), '-prefix', 'STORM-', '-timeout', '150s'], 200_000);
      const st = results.ours.storm;
      say(`    ${st.run.ok}/${PION.stormCount} connected in ${st.run.seconds.toFixed(1)} s, ${(st.cpuPerOp * 1e6).toFixed(0)} µs server CPU each${st.run.failed ? `, ${st.run.failed} failed` : ''}`);
      await p.stop();
    }
    if (!QUICK) {
      // A process of its own: libcoap keeps a session per coap:// peer as well, and its request
      // cost grows with the number of sessions it holds (the crowded row).
      say('coap-server-openssl without DTLS (coap://)');
      const { p, plain } = await startLibcoap();
      results.floor.libcoapPlain = await measurePlain(p, plain, TIME);
      await p.stop();
    }

    // 4. The floors: the same requests without DTLS, on node:dgram alone and on node-coap as
    //    shipped (the full bench only: the quick one keeps to its 4 minutes).
    for (const mode of QUICK ? [] : (['udp-null', 'node-coap'] as const)) {
      say(`${mode} without DTLS (coap://)`);
      const p = await startChild(mode);
      results.floor[mode === 'udp-null' ? 'udpNull' : 'nodeCoap'] = await measurePlain(p, p.port, WHOAMI);
      await p.stop();
    }

    // 5. Isolation (measureIsolation above).
    await measureIsolation();
  } finally {
    for (const p of procs) await p.stop();
    await token.cleanup();
    pion.cleanup();
  }

  printReport(started, results);
}

/**
 * Requests over exactly 1,000 established sessions (on a server that never had more); then
 * more sessions up to P.idleSessions, idle, for the RSS growth per idle session (baseline taken
 * after the requests, so caches that the requests filled are not counted against sessions);
 * then the same requests again with all of them established. The quick bench (P.idleSessions 0)
 * stops after the first requests: the idle sessions and the crowded row take a minute.
 */
async function measureSessions(p: ServerProc, target: Target, into: ServerResults, prefix: string): Promise<void> {
  const active = await establishAll(target, P.sessions, prefix);
  say(`  requests over ${active.length} sessions, ${active.length} established`);
  await warmRequests(active, target.path);
  into.req = await withServerCpu(p, () => runRequests(active, target.path, { seconds: P.seconds, concurrency: P.reqConcurrency }));
  if (P.idleSessions <= active.length) return closeAll(active, false);
  await sleep(1000);
  const rss0 = rssKiB(p.pid);
  const idle = await establishAll(target, P.idleSessions - active.length, `${prefix}idle-`);
  await sleep(1000);
  const rss1 = rssKiB(p.pid);
  into.rssSessions = idle.length;
  into.rssPerSession = ((rss1 - rss0) * 1024) / Math.max(1, idle.length);
  say(`  VmRSS ${rss0} -> ${rss1} KiB over ${idle.length} more sessions`);
  const total = active.length + idle.length;
  say(`  requests over ${active.length} sessions, ${total} established`);
  into.reqCrowded = await withServerCpu(p, () => runRequests(active, target.path, { seconds: P.seconds, concurrency: P.reqConcurrency }));
  into.crowdedSessions = total;
  closeAll(active, false);
  closeAll(idle, false);
}

/** CON GETs over coap:// from P.sessions source addresses, warmed up like the DTLS runs. */
async function measurePlain(p: ServerProc, port: number, reqPath: string[]): Promise<Measured<RequestRun>> {
  const peers = await openPlainPeers(port, P.sessions);
  try {
    await warmRequests(peers, reqPath);
    return await withServerCpu(p, () => runRequests(peers, reqPath, { seconds: P.seconds, concurrency: P.reqConcurrency }));
  } finally {
    closePlainPeers(peers);
  }
}

/** Read before this process pins itself: nproc counts the CPUs a process may run on. */
function machine(): string {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  return `nproc ${execFileSync('nproc').toString().trim()}, ${cpu}, node ${process.version}, ${os.type()} ${os.release()}`;
}
const MACHINE = machine();

function hsCell(m: Measured<HandshakeRun> | undefined): string {
  if (!m) return 'n/a';
  return `${f0(m.run.perSecond)} (srv ${pctS(m.serverCpu)}, gen ${pctS(m.run.genCpu)}${m.run.failed ? `, ${m.run.failed} failed` : ''})`;
}

function reqCell(m: Measured<RequestRun> | undefined): string {
  if (!m) return 'n/a';
  return `${f0(m.run.perSecond)} (srv ${pctS(m.serverCpu)}, gen ${pctS(m.run.genCpu)}${m.run.lost ? `, ${m.run.lost} lost` : ''})`;
}

/** Runs the real CLI on a file of serials, pinned to the server core, and times it end to end. */
async function measureDerive(env: Record<string, string>, count: number): Promise<{ serials: number; perSecond: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-derive-'));
  try {
    const input = path.join(dir, 'serials.txt');
    writeFileSync(input, Array.from({ length: count }, (_, i) => `SN${String(i).padStart(9, '0')}`).join('\n') + '\n');
    const started = performance.now();
    execFileSync('taskset', ['-c', String(SERVER_CORE), process.execPath, path.join(ROOT, 'bin/coap-psk.js'), 'derive', '--format', 'csv', '--out', path.join(dir, 'keys.csv')], {
      env: { ...process.env, ...env },
      stdio: [openSync(input, 'r'), 'ignore', 'inherit'],
    });
    return { serials: count, perSecond: count / ((performance.now() - started) / 1000) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The header of the report's table of measurements, and of `-- --isolation`'s row. */
const MEASUREMENT_HEADER = '| Measurement | coap-psk (this server) | libcoap coap-server-openssl | Generator ceiling (null responder) |';

/** The isolation row of the report; `c` is the null responder's (its alone figure, the floor). */
function isolationRow(o: ServerResults, c: ServerResults): string {
  return `| Isolation: ${ISOLATION_RATE} req/s on ${P.isoSessions} sessions, 50 ms HSM latency; p50 / p99 ms alone → with new handshakes from a second process (null responder: alone, no HSM) | ${latCell(o.isoAlone)} → ${latCell(o.isoLoaded)} (${f0(o.isoHandshakes?.perSecond ?? NaN)} handshakes/s alongside, ${o.isoLoaded?.lost ?? 'n/a'} lost); server's GC pauses and loop delay: ${windowCell(o.isoAloneServer)} → ${windowCell(o.isoLoadedServer)} | — | ${latCell(c.isoAlone)} |`;
}

/** `-- --isolation`: the row under its table header. */
function isolationTable(o: ServerResults, c: ServerResults): string[] {
  return [MEASUREMENT_HEADER, '|---|---:|---:|---:|', isolationRow(o, c)];
}

/** The isolation server's view of a window: GC pauses (count, longest, total) and its loop delay p99. */
function windowCell(w: ServerWindow | undefined): string {
  return w ? `${w.pauses} GC, longest ${f2(w.maxMs)} ms, ${f0(w.totalMs)} ms in all, loop delay p99 ${f2(w.loopDelayP99Ms)} ms` : 'n/a';
}

function latCell(r: RequestRun | undefined): string {
  return r ? `${f2(r.p50)} / ${f2(r.p99)}` : 'n/a';
}

/**
 * A result is generator-bound when the generator's core was (nearly) full, or when it reached
 * the rate the generator showed against the null responder.
 */
function bound(m: Measured<{ genCpu: number; perSecond: number }> | undefined, ceiling: number | undefined): string {
  if (!m) return '';
  const flags: string[] = [];
  if (m.run.genCpu >= 0.9) flags.push('generator core saturated');
  if (ceiling && m.run.perSecond >= 0.95 * ceiling) flags.push('at the null-responder rate');
  if (m.serverCpu >= 0.9) flags.push('server core saturated');
  return flags.join(', ');
}

/** µs of server CPU per request: the server's CPU share over its rate. */
function usPerRequest(m: Measured<RequestRun> | undefined): string {
  return m && m.run.perSecond > 0 ? `${((m.serverCpu / m.run.perSecond) * 1e6).toFixed(1)} µs` : 'n/a';
}

/** µs of server CPU per operation, with the rate and both CPU shares. */
function pionCell(m: PionMeasured | undefined): string {
  if (!m || !Number.isFinite(m.cpuPerOp)) return 'n/a';
  const extra = `${m.run.failed ? `, ${m.run.failed} failed` : ''}${m.run.lost ? `, ${m.run.lost} lost` : ''}`;
  return `**${(m.cpuPerOp * 1e6).toFixed(0)} µs** (${f0(m.run.perSecond)}/s, srv ${pctS(m.serverCpu)}, gen ${pctS(m.run.genCpu)}${extra})`;
}

/** The same for a run of the project's own generator. */
function ownCell(m: Measured<{ perSecond: number; genCpu: number }> | undefined): string {
  if (!m || !(m.run.perSecond > 0)) return 'n/a';
  return `${(cpuPerOp(m) * 1e6).toFixed(0)} µs (${f0(m.run.perSecond)}/s, srv ${pctS(m.serverCpu)}, gen ${pctS(m.run.genCpu)})`;
}

/** Generator-bound flags of a pion-load run: its core full, or the rate it reached on the null responder. */
function pionBound(m: PionMeasured | undefined, ceiling: PionMeasured | undefined): string {
  if (!m) return '';
  const flags: string[] = [];
  if (m.run.genCpu >= 0.9) flags.push('generator core saturated');
  if (ceiling && m.run.perSecond >= 0.95 * ceiling.run.perSecond) flags.push('at the null-responder rate');
  if (m.serverCpu >= 0.9) flags.push('server core saturated');
  return flags.join(', ');
}

type Results = { ceiling: ServerResults; ours: ServerResults; libcoap: ServerResults; pion: ServerResults; floor: FloorResults };

/** The headline: server CPU per operation, both generators, every server of the run. */
function headline(r: Results, lines: string[]): void {
  const { ceiling: c, ours: o, libcoap: l, pion: pg } = r;
  lines.push(`Server CPU per operation (server CPU time over the window / operations completed; lower is better). pion-load: the independent generator (Go, pion/dtls 2.2.6), best of ${PION.repeats} runs of ${PION.seconds} s; handshake pattern: a fresh socket, a full handshake with a new serial, one CON GET, close_notify, ${PION.hsConcurrency} in flight; requests: CON GET over ${PION.sessions} sessions, ${PION.outstanding} outstanding. Own generator: the figures of the tables below (handshake and close_notify without the GET; requests over ${P.sessions} sessions).`);
  lines.push('');
  lines.push('| Server | CPU per handshake (+1 GET, close), pion-load | CPU per CON GET, pion-load | CPU per handshake, own generator | CPU per CON GET, own generator |');
  lines.push('|---|---:|---:|---:|---:|');
  lines.push(`| libcoap coap-server-openssl (C) | ${pionCell(l.pionHs)} | ${pionCell(l.pionReq)} | ${ownCell(l.hsOn)} | ${ownCell(l.req)} |`);
  lines.push(`| pion/dtls server (Go), trivial responder | ${pionCell(pg.pionHs)} | ${pionCell(pg.pionReq)} | — | — |`);
  lines.push(`| coap-psk (this server), defaults, HSM cache on | ${pionCell(o.pionHs)} | ${pionCell(o.pionReq)} | ${ownCell(o.hsOn)} | ${ownCell(o.req)} |`);
  lines.push(`| Null responder (this project's DTLS layer alone; the generators' ceiling) | ${pionCell(c.pionHs)} | ${pionCell(c.pionReq)} | ${ownCell(c.hsOn)} | ${ownCell(c.req)} |`);
  lines.push('');
  const st = o.storm;
  lines.push(st
    ? `Reconnect storm (pion-load, ${PION.stormConcurrency} handshakes in flight, HSM cache off, a fresh process): ${f0(st.run.ok)} of ${f0(PION.stormCount)} distinct serials connected in **${st.run.seconds.toFixed(1)} s** (${f0(st.run.perSecond)}/s, ${(st.cpuPerOp * 1e6).toFixed(0)} µs server CPU each${st.run.failed ? `, ${st.run.failed} failed handshakes` : ''}).`
    : 'Reconnect storm: n/a');
  const pionNotes: Array<[string, string]> = [
    ['pion-load: coap-psk handshakes', pionBound(o.pionHs, c.pionHs)],
    ['pion-load: libcoap handshakes', pionBound(l.pionHs, c.pionHs)],
    ['pion-load: pion server handshakes', pionBound(pg.pionHs, c.pionHs)],
    ['pion-load: coap-psk requests', pionBound(o.pionReq, c.pionReq)],
    ['pion-load: libcoap requests', pionBound(l.pionReq, c.pionReq)],
    ['pion-load: pion server requests', pionBound(pg.pionReq, c.pionReq)],
  ];
  for (const [what, flag] of pionNotes) {
    if (flag.includes('generator')) lines.push(`- ${what}: GENERATOR-BOUND (${flag}); the rate is the generator's, the CPU per operation still the server's.`);
  }
  lines.push(`pion-load's own cost: ${f0(Math.max(...[o.pionHs, l.pionHs, pg.pionHs, c.pionHs].map((m) => (m && m.run.genCpu > 0 ? m.run.perSecond / m.run.genCpu : 0))))} handshake patterns/s and ${f0(Math.max(...[o.pionReq, l.pionReq, pg.pionReq, c.pionReq].map((m) => (m && m.run.genCpu > 0 ? m.run.perSecond / m.run.genCpu : 0))))} requests/s per generator core (rate / generator CPU share, best run).`);
  lines.push('');
}

function printReport(started: Date, r: Results): void {
  const { ceiling: c, ours: o, libcoap: l, floor: fl } = r;
  const cmd = `npm run bench${QUICK ? ' -- --quick' : ''}`;
  const lines: string[] = [];
  lines.push(`### Benchmark: coap-psk vs libcoap coap-server-openssl and pion/dtls${QUICK ? ' (quick)' : ''}`);
  lines.push('');
  lines.push(`- Date: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  lines.push(`- Machine: ${MACHINE}`);
  lines.push(`- Command: \`${cmd}\` (servers pinned to core ${SERVER_CORE}, generators to core ${GENERATOR_CORE}, loopback; this server's processes with ${SERVER_NODE_FLAGS.join(' ') || "node's default heap settings"})`);
  lines.push('- Each simulated device has its own loopback source address (127.1.x.y for the own generator, 127.2.x.y for pion-load), as real devices have their own addresses.');
  lines.push(`- Load: TLS_PSK_WITH_AES_128_CCM_8 with extended master secret; own generator: best of ${P.repeats} runs of ${P.seconds} s per figure, each server warmed up first (1 s windows until two agree within ${WARM_UP.tolerance * 100} %, at most ${WARM_UP.maxSeconds} s); ${P.hsConcurrency} handshakes in flight; requests: CON GET (\`/whoami\` here, \`/time\` on libcoap), ${P.reqConcurrency} outstanding over ${P.sessions} sessions, one per session at a time. "Best" is the run with the least server CPU per operation.`);
  lines.push('');
  headline(r, lines);
  lines.push(MEASUREMENT_HEADER);
  lines.push('|---|---:|---:|---:|');
  lines.push(`| Full handshakes/s, distinct serials, HSM cache off | ${hsCell(o.hsOff)} | — | — |`);
  lines.push(`| Full handshakes/s, distinct serials, HSM cache on | ${hsCell(o.hsOn)} | ${hsCell(l.hsOn)} | ${hsCell(c.hsOn)} |`);
  lines.push(`| CON GET requests/s over ${P.sessions} established sessions | ${reqCell(o.req)} | ${reqCell(l.req)} | ${reqCell(c.req)} |`);
  lines.push(`| Request latency p50 / p99, ms | ${latCell(o.req?.run)} | ${latCell(l.req?.run)} | ${latCell(c.req?.run)} |`);
  if (P.idleSessions > P.sessions) {
    lines.push(`| CON GET requests/s over ${P.sessions} of ${f0(o.crowdedSessions ?? NaN)} / ${f0(l.crowdedSessions ?? NaN)} established sessions | ${reqCell(o.reqCrowded)} | ${reqCell(l.reqCrowded)} | — |`);
    lines.push(`| Request latency p50 / p99, ms, with all of them established | ${latCell(o.reqCrowded?.run)} | ${latCell(l.reqCrowded?.run)} | — |`);
    lines.push(`| RSS growth per idle session (VmRSS, ${f0(o.rssSessions ?? NaN)} / ${f0(l.rssSessions ?? NaN)} sessions added to ${P.sessions}) | ${f0(o.rssPerSession ?? NaN)} B | ${f0(l.rssPerSession ?? NaN)} B | — |`);
  }
  lines.push(isolationRow(o, c));
  lines.push(`| \`coap-psk derive --format csv --out FILE\` through SoftHSM, ${f0(o.derive?.serials ?? NaN)} serials from a file | ${f0(o.derive?.perSecond ?? NaN)} derivations/s (start-up included) | — | — |`);
  lines.push('');
  lines.push(`Server CPU per request, over DTLS and without it (coap://, the same generator, CON GETs from the same number of source addresses; without DTLS: the full bench only):`);
  lines.push('');
  lines.push('| Server | Over DTLS (CCM_8) | Without DTLS |');
  lines.push('|---|---:|---:|');
  lines.push(`| coap-psk (this server) | ${usPerRequest(o.req)} | — |`);
  lines.push(`| libcoap coap-server-openssl | ${usPerRequest(l.req)} | ${usPerRequest(fl.libcoapPlain)} (${reqCell(fl.libcoapPlain)}) |`);
  lines.push(`| Null responder: this project's DTLS layer; without DTLS: node:dgram alone | ${usPerRequest(c.req)} | ${usPerRequest(fl.udpNull)} (${reqCell(fl.udpNull)}) |`);
  lines.push(`| node-coap's Server as shipped (no DTLS, none of this project's fixes) | — | ${usPerRequest(fl.nodeCoap)} (${reqCell(fl.nodeCoap)}) |`);
  lines.push('');
  lines.push('srv / gen: CPU share of one core used by the server and by the generator during the measurement.');
  const est = (runs: Array<Measured<{ genCpu: number; perSecond: number }> | undefined>) =>
    Math.max(...runs.map((m) => (m && m.run.genCpu > 0 ? m.run.perSecond / m.run.genCpu : 0)));
  lines.push(`Own generator's cost: ${f0(est([o.hsOff, o.hsOn, l.hsOn, c.hsOn]))} handshakes/s and ${f0(est([o.req, l.req, c.req]))} requests/s per generator core (rate / generator CPU share, best run).`);
  const notes: Array<[string, string]> = [
    ['coap-psk handshakes (cache off)', bound(o.hsOff, c.hsOn?.run.perSecond)],
    ['coap-psk handshakes (cache on)', bound(o.hsOn, c.hsOn?.run.perSecond)],
    ['libcoap handshakes', bound(l.hsOn, c.hsOn?.run.perSecond)],
    ['coap-psk requests', bound(o.req, c.req?.run.perSecond)],
    ['libcoap requests', bound(l.req, c.req?.run.perSecond)],
  ];
  for (const [what, flag] of notes) {
    if (flag.includes('generator')) lines.push(`- ${what}: GENERATOR-BOUND (${flag}); the rate is the generator's, the CPU per operation still the server's.`);
  }
  const perCore = (m: Measured<{ perSecond: number }> | undefined) => (m && m.serverCpu > 0 ? m.run.perSecond / m.serverCpu : NaN);
  lines.push(
    `Own generator, per core of server CPU (rate / server CPU share): handshakes ${f0(perCore(o.hsOn))} vs ${f0(perCore(l.hsOn))} (${f2(perCore(o.hsOn) / perCore(l.hsOn))}), ` +
      `requests ${f0(perCore(o.req))} vs ${f0(perCore(l.req))} (${f2(perCore(o.req) / perCore(l.req))}).`,
  );
  const ownVsPion = (own: Measured<{ perSecond: number }> | undefined, pm: PionMeasured | undefined) => (own && pm ? f2(pm.cpuPerOp / cpuPerOp(own)) : 'n/a');
  lines.push(`This server's CPU per operation, pion-load / own generator: handshakes ${ownVsPion(o.hsOn, o.pionHs)} (pion's pattern adds a GET and a fresh socket's first datagrams), requests ${ownVsPion(o.req, o.pionReq)}; libcoap's: ${ownVsPion(l.hsOn, l.pionHs)} / ${ownVsPion(l.req, l.pionReq)}.`);
  lines.push('');
  const ratio = (ref: PionMeasured | undefined, ours: PionMeasured | undefined) => f2((ref?.cpuPerOp ?? NaN) / (ours?.cpuPerOp ?? NaN));
  lines.push(`cpu per op vs libcoap: handshakes ${ratio(l.pionHs, o.pionHs)} requests ${ratio(l.pionReq, o.pionReq)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const watchdog = setTimeout(() => {
  say('watchdog: giving up after the time limit');
  killAllNow();
  process.exit(3);
}, (SOAK ? SOAK_SECONDS + 400 : QUICK ? 270 : 1200) * 1000);
watchdog.unref();

// `-- --workers`: the workers phase alone (scripts/bench/workers.ts), its own report; `-- --resumption`:
// full against abbreviated handshakes (scripts/bench/resumption.ts); `-- --compare DIR_A DIR_B`: two
// builds side by side (scripts/bench/compare.ts).
const compareAt = argv.indexOf('--compare');
const entry = compareAt >= 0
  ? async () => {
      const [a, b] = [argv[compareAt + 1], argv[compareAt + 2]];
      if (!a || !b) throw new Error('--compare DIR_A DIR_B');
      const dirs: [string, string] = [path.resolve(a), path.resolve(b)];
      pinSelf();
      process.stdout.write(`${(await benchCompare({ root: ROOT, dirs, quick: QUICK, say })).join('\n')}\n`);
    }
  : argv.includes('--resumption')
  ? async () => {
      buildDist();
      process.stdout.write(`${(await benchResumption({ root: ROOT, quick: QUICK, say })).join('\n')}\n`);
    }
  : argv.includes('--workers')
  ? async () => {
      pinSelf();
      process.stdout.write(`${(await benchWorkers({ root: ROOT, quick: QUICK, say })).join('\n')}\n`);
    }
  : main;

entry().then(
  () => process.exit(0),
  (e: unknown) => {
    say(`failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    killAllNow();
    process.exit(1);
  },
);
