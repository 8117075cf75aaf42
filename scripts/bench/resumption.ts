/**
 * `npm run bench -- --resumption [--quick]`: the server's CPU per abbreviated handshake (RFC 5246
 * 7.3, by session ID) against a full one (issue 13: at most a third, and no HSM call). The real
 * `coap-psk serve` as the main bench runs it (defaults, a log line per handshake at info) on a
 * SoftHSM token with the derived-key cache off, so each full handshake derives its key in the
 * HSM. The client is the bench's pion-load generator (scripts/bench/pion-load), in one run: its
 * `handshakes` phase (fresh socket, full handshake with a new serial, one CON GET, close_notify)
 * and its `resumptions` phase (the same, each handshake resuming a session by its ID). The
 * server's CPU is read at the generator's window marks, as in the main bench; the phases
 * alternate and each keeps its run with the least CPU per handshake.
 *
 * pion/dtls v2 resumes by session ID only: tickets are not measured here (a ticket costs one
 * AES-GCM open of ~100 bytes more than an ID, and no HSM call either; test/interop covers it).
 * HSM calls are read from the server's own counter (coap_psk_key_cache_misses_total).
 */
import { get } from 'node:http';
import { sample } from '../../test/helpers/prometheus.js';
import type { PionMeasured } from './pion.js';
import { CONCURRENCY, openPionServe, warmUp } from './pion-serve.js';

export interface ResumptionBenchOptions {
  root: string;
  quick: boolean;
  say: (s: string) => void;
}

interface Series {
  kind: string;
  best: PionMeasured;
  /** Handshakes over all measured runs of the series, and the HSM derivations during them. */
  handshakes: number;
  derivations: number;
}

/** coap_psk_key_cache_misses_total: key lookups that went to the key source, the HSM. */
async function derivations(metricsPort: number): Promise<number> {
  const body = await new Promise<string>((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('metrics: timeout')));
  });
  const misses = sample(body, 'coap_psk_key_cache_misses_total');
  if (misses === undefined) throw new Error('metrics: no coap_psk_key_cache_misses_total');
  return misses;
}

async function freeTcpPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function benchResumption(o: ResumptionBenchOptions): Promise<string[]> {
  const seconds = o.quick ? 2 : 10;
  const repeats = o.quick ? 3 : 5;
  const bench = await openPionServe(o.root, 'bench-resumption', 'RB');
  const metricsPort = await freeTcpPort();
  try {
    const srv = await bench.start('serve', o.root, { COAP_PSK_METRICS_PORT: String(metricsPort) });
    const phase = (name: string, s: number) => bench.run(srv, name, s);
    o.say(`resumption: pion-load, ${repeats} runs of ${seconds} s of each kind against coap-psk serve (cache off, SoftHSM, log at info)`);
    await warmUp(phase);
    const full: Series = { kind: 'full (HSM derivation)', best: undefined!, handshakes: 0, derivations: 0 };
    const resumed: Series = { kind: 'resumed by session ID', best: undefined!, handshakes: 0, derivations: 0 };
    for (let i = 0; i < repeats; i++) {
      for (const [series, name] of [[full, 'handshakes'], [resumed, 'resumptions']] as const) {
        const d0 = await derivations(metricsPort);
        const m = await phase(name, seconds);
        // The resumptions phase's one full handshake per device comes before its window.
        series.derivations += (await derivations(metricsPort)) - d0 - (name === 'resumptions' ? CONCURRENCY : 0);
        series.handshakes += m.run.ok;
        const extra = m.run.notResumed ? `, ${m.run.notResumed} not resumed` : '';
        o.say(`    ${series.kind}: ${Math.round(m.run.perSecond)}/s, ${(m.cpuPerOp * 1e6).toFixed(0)} µs server CPU/op (srv ${Math.round(m.serverCpu * 100)}%, gen ${Math.round(m.run.genCpu * 100)}%${m.run.failed ? `, ${m.run.failed} failed` : ''}${extra})`);
        if (!series.best || !(m.cpuPerOp >= series.best.cpuPerOp)) series.best = m;
      }
    }
    const ratio = resumed.best.cpuPerOp / full.best.cpuPerOp;
    const row = (r: Series) => `| ${r.kind} | ${r.best.run.ok} | ${(r.best.cpuPerOp * 1e6).toFixed(0)} µs | ${(100 * r.best.cpuPerOp / full.best.cpuPerOp).toFixed(0)} % |`;
    return [
      '| handshake | handshakes | server CPU per handshake | of the full one (same suite) |',
      '| --- | ---: | ---: | ---: |',
      row(full),
      row(resumed),
      '',
      `HSM derivations: ${full.derivations} in ${full.handshakes} full handshakes, ${resumed.derivations} in ${resumed.handshakes} resumed ones`,
      `resumed / full server CPU: ${ratio.toFixed(2)} (target ≤ 0.33: ${ratio <= 1 / 3 ? 'met' : 'not met'})`,
    ];
  } finally {
    await bench.close();
  }
}
