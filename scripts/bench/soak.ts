/**
 * `npm run bench -- --soak [--soak-seconds N] [--soak-rate R]`: the memory check of issue 12,
 * item 5. One `coap-psk serve` process (defaults, HSM cache on), pion-load's requests phase
 * over 1,000 sessions capped at R requests/s (default 10,000) for N seconds (default 600), and
 * the server's RSS (VmRSS) read every 30 s beside the rate reached in that interval. The
 * target: RSS plateaus under 160 MiB. The rate is the generator's cap, not a promise: on a
 * loaded machine the table shows the rate actually reached, and the RSS at that rate.
 */
import { runPinnedLines, rssKiB, cpuSeconds, type ServerProc } from './procs.js';
import { pionKeyEnv, type PionKey } from './pion.js';

export interface SoakOptions {
  seconds: number;
  rate: number;
  sessions: number;
  /** Requests in flight over all sessions (one per session at a time). */
  outstanding: number;
  sampleSeconds: number;
  say: (s: string) => void;
}

interface Sample {
  seconds: number;
  rssKiB: number;
  ok: number;
  lost: number;
  cpu: number;
}

export const SOAK_LIMIT_MIB = 160;

/** Runs the soak against `srv` with pion-load at `bin`; returns the report's lines (Markdown). */
export async function soak(bin: string, core: number, srv: ServerProc, key: PionKey, o: SoakOptions): Promise<string[]> {
  const samples: Sample[] = [];
  const rss0 = rssKiB(srv.pid);
  let result: { ok: number; lost: number; seconds: number; perSecond: number; p99: number; sessions?: number; genCpu?: number } | undefined;
  const args = ['-port', String(srv.port), '-phase', 'requests', '-seconds', String(o.seconds), '-sessions', String(o.sessions), '-outstanding', String(o.outstanding),
    '-concurrency', '32', '-rate', String(o.rate), '-progress', `${o.sampleSeconds}s`, '-prefix', 'SOAK-', '-path', 'whoami', '-timeout', '120s'];
  await runPinnedLines(core, bin, args, { ...process.env, ...pionKeyEnv(key) }, (o.seconds + 240) * 1000, (line) => {
    if (line === 'START') {
      samples.push({ seconds: 0, rssKiB: rssKiB(srv.pid), ok: 0, lost: 0, cpu: cpuSeconds(srv.pid) });
      o.say(`  soak: ${o.sessions} sessions up, RSS ${(samples[0]!.rssKiB / 1024).toFixed(1)} MiB (before them ${(rss0 / 1024).toFixed(1)} MiB)`);
    } else if (line.startsWith('PROGRESS ')) {
      const p = JSON.parse(line.slice('PROGRESS '.length)) as { seconds: number; ok: number; lost: number };
      const s = { ...p, rssKiB: rssKiB(srv.pid), cpu: cpuSeconds(srv.pid) };
      const prev = samples[samples.length - 1]!;
      samples.push(s);
      o.say(`  soak ${s.seconds.toFixed(0)} s: RSS ${(s.rssKiB / 1024).toFixed(1)} MiB, ${Math.round((s.ok - prev.ok) / (s.seconds - prev.seconds))} req/s, ${s.lost} lost`);
    } else if (line.startsWith('{')) {
      result = JSON.parse(line) as typeof result;
    }
  });
  if (!result) throw new Error('soak: pion-load printed no result');
  const rows = samples.map((s, i) => {
    const prev = samples[i - 1];
    const rate = prev ? (s.ok - prev.ok) / (s.seconds - prev.seconds) : NaN;
    const cpu = prev ? (s.cpu - prev.cpu) / (s.seconds - prev.seconds) : NaN;
    return `| ${s.seconds.toFixed(0)} | ${(s.rssKiB / 1024).toFixed(1)} | ${Number.isFinite(rate) ? Math.round(rate).toLocaleString('en-US') : '—'} | ${Number.isFinite(cpu) ? `${Math.round(cpu * 100)}%` : '—'} |`;
  });
  const peak = Math.max(...samples.map((s) => s.rssKiB)) / 1024;
  const half = samples.slice(Math.floor(samples.length / 2));
  const lateGrowth = half.length > 1 ? `${((half[half.length - 1]!.rssKiB - half[0]!.rssKiB) / 1024).toFixed(1)} MiB` : 'n/a';
  return [
    `Soak: pion-load, CON GET over ${result.sessions ?? o.sessions} sessions, capped at ${o.rate.toLocaleString('en-US')} requests/s (${o.outstanding} outstanding), ${o.seconds} s; RSS before the sessions ${(rss0 / 1024).toFixed(1)} MiB.`,
    '',
    '| t (s) | VmRSS (MiB) | requests/s in the interval | server CPU |',
    '|---:|---:|---:|---:|',
    ...rows,
    '',
    `Reached ${Math.round(result.perSecond).toLocaleString('en-US')} requests/s on average (${result.ok.toLocaleString('en-US')} answered, ${result.lost} lost, p99 ${result.p99.toFixed(1)} ms; the generator used ${result.genCpu === undefined ? 'n/a' : `${Math.round(result.genCpu * 100)}%`} of its core).`,
    `RSS peak ${peak.toFixed(1)} MiB, ${lateGrowth} growth over the second half: ${peak < SOAK_LIMIT_MIB ? `under the ${SOAK_LIMIT_MIB} MiB limit` : `OVER the ${SOAK_LIMIT_MIB} MiB limit`}${result.perSecond < 0.95 * o.rate ? ` (at ${Math.round(result.perSecond).toLocaleString('en-US')}/s, not the ${o.rate.toLocaleString('en-US')}/s asked for)` : ''}.`,
  ];
}
