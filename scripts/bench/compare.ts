/**
 * `npm run bench -- --compare DIR_A DIR_B [--quick]`: two builds of this server side by side,
 * for a change too small to show in separate runs on a shared machine (CONTRIBUTING, pitfalls).
 * Each DIR is a checkout with its node_modules (a clone, a worktree, `git archive` of a commit
 * with a node_modules link); its dist/ is built here. Both `coap-psk serve` processes run at the
 * same time on the server core (defaults, SoftHSM, key cache off), each under its own pion-load
 * on the generator core, in the same windows: whatever else loads the machine loads both. The
 * phases are pion-load's `handshakes` and `resumptions`; for each pair of runs, B's CPU per
 * handshake over A's, and the median of those ratios (below 1: B is cheaper).
 */
import { execFileSync } from 'node:child_process';
import { openPionServe, PHASES, warmUp } from './pion-serve.js';
import type { ServerProc } from './procs.js';

export interface CompareOptions {
  root: string;
  dirs: [string, string];
  quick: boolean;
  say: (s: string) => void;
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

export async function benchCompare(o: CompareOptions): Promise<string[]> {
  const seconds = 2;
  const pairs = o.quick ? 6 : 12;
  for (const dir of o.dirs) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const bench = await openPionServe(o.root, 'bench-compare', 'CMP');
  try {
    const servers: ServerProc[] = [];
    for (const [i, dir] of o.dirs.entries()) servers.push(await bench.start(`serve-${'AB'[i]}`, dir));
    const both = (phase: string, s: number) => Promise.all(servers.map((srv) => bench.run(srv, phase, s)));
    o.say(`compare: ${pairs} pairs of ${seconds} s runs per phase, A = ${o.dirs[0]}, B = ${o.dirs[1]}`);
    await warmUp(both);
    const us: Record<string, [number[], number[]]> = { handshakes: [[], []], resumptions: [[], []] };
    for (let r = 0; r < pairs; r++) {
      for (const phase of PHASES) {
        const [a, b] = await both(phase, seconds);
        us[phase]![0].push(a!.cpuPerOp * 1e6);
        us[phase]![1].push(b!.cpuPerOp * 1e6);
        o.say(`    ${phase}: A ${(a!.cpuPerOp * 1e6).toFixed(0)} µs, B ${(b!.cpuPerOp * 1e6).toFixed(0)} µs server CPU/op`);
      }
    }
    return [
      '| phase | A, median | B, median | B / A, median of the pairs (range) |',
      '| --- | ---: | ---: | ---: |',
      ...PHASES.map((phase) => {
        const [a, b] = us[phase]!;
        const ratios = b.map((x, i) => x / a[i]!);
        return `| ${phase} | ${median(a).toFixed(0)} µs | ${median(b).toFixed(0)} µs | ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) |`;
      }),
    ];
  } finally {
    await bench.close();
  }
}
