/**
 * The independent generator: scripts/bench/pion-load (Go, pion/dtls 2.2.6 from Debian), built
 * offline into a temp dir when the bench starts, run pinned to the generator core. Key material
 * goes to it through its environment (BENCH_MASTER_HEX or BENCH_STATIC_PSK_HEX), never argv.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuSeconds, runPinnedLines, type ServerProc } from './procs.js';

/** What pion-load prints (scripts/bench/pion-load/main.go, Result). */
export interface PionRun {
  ok: number;
  failed: number;
  lost: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  genCpu: number;
  sessions?: number;
  /** The resumptions phase: handshakes the server answered with a full one. */
  notResumed?: number;
}

export interface PionMeasured {
  run: PionRun;
  /** Server CPU share of one core over the generator's window (START to its result line). */
  serverCpu: number;
  /** Server CPU seconds per operation completed in the window. */
  cpuPerOp: number;
}

/** The key the generator derives or uses, as environment variables for it. */
export type PionKey = { masterHex: string } | { staticPsk: Buffer };

export function pionKeyEnv(key: PionKey): NodeJS.ProcessEnv {
  return 'masterHex' in key ? { BENCH_MASTER_HEX: key.masterHex } : { BENCH_STATIC_PSK_HEX: key.staticPsk.toString('hex') };
}

/** Builds pion-load with Debian's Go packages, no network (GOPATH mode); returns the binary and a cleanup. */
export function buildPionLoad(root: string): { bin: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-pion-'));
  const bin = path.join(dir, 'pion-load');
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: path.join(root, 'scripts/bench/pion-load'),
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs one phase of pion-load against `srv`; the server's CPU is read at the window's two marks. */
export async function runPion(bin: string, core: number, srv: ServerProc, key: PionKey, args: string[], timeoutMs: number): Promise<PionMeasured> {
  let c0 = NaN;
  let c1 = NaN;
  let run: PionRun | undefined;
  await runPinnedLines(core, bin, ['-port', String(srv.port), ...args], { ...process.env, ...pionKeyEnv(key) }, timeoutMs, (line) => {
    if (line === 'START') c0 = cpuSeconds(srv.pid);
    else if (line.startsWith('{')) {
      c1 = cpuSeconds(srv.pid);
      run = JSON.parse(line) as PionRun;
    }
  });
  if (!run) throw new Error(`pion-load ${args.join(' ')}: no result`);
  const cpu = c1 - c0;
  return { run, serverCpu: cpu / run.seconds, cpuPerOp: run.ok > 0 ? cpu / run.ok : NaN };
}

/** The lowest CPU per operation of `repeats` runs: other load on the machine only adds to it. */
export async function bestOfPion(repeats: number, once: () => Promise<PionMeasured>, say: (s: string) => void): Promise<PionMeasured> {
  let best: PionMeasured | undefined;
  for (let i = 0; i < repeats; i++) {
    const m = await once();
    say(`    pion: ${Math.round(m.run.perSecond)}/s, ${(m.cpuPerOp * 1e6).toFixed(0)} µs server CPU/op (srv ${Math.round(m.serverCpu * 100)}%, gen ${Math.round(m.run.genCpu * 100)}%${m.run.failed ? `, ${m.run.failed} failed` : ''}${m.run.lost ? `, ${m.run.lost} lost` : ''})`);
    if (!best || !(m.cpuPerOp >= best.cpuPerOp)) best = m;
  }
  return best!;
}
