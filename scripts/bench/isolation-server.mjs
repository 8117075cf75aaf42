// @ts-check
/**
 * The isolation measurement's server: the real server (dist/server.js createServer) on the real
 * PKCS#11 resolver from the COAP_PSK_* environment, with BENCH_HSM_DELAY_MS (50) of latency
 * in front of every key lookup.
 *
 * Plain JavaScript on dist/, run by node without tsx: tsx's module hooks run on a thread of
 * their own, whose heap is collected on the same pinned core, and its mark-compacts (6-11 ms
 * here) stalled this server's event loop in the very percentile the row measures. Production
 * (`coap-psk serve`) has no such thread. The bench builds dist/ first.
 *
 * It watches its own event loop, for the row's explanation: each SIGUSR2 ends the window that
 * the previous one began with a line `GC {"pauses":n,"totalMs":t,"maxMs":m,"loopDelayP99Ms":d}`
 * on stderr (that window's garbage-collection pauses, and the p99 of the loop's delay read by
 * a 1-ms timer, the timer's own millisecond taken off), and begins the next.
 *
 * Usage: node scripts/bench/isolation-server.mjs <port>. Prints `READY <port>` when bound.
 */
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { createResolver, loadKeyConfig } from '../../dist/config/keys.js';
import { createServer } from '../../dist/server.js';

const port = Number(process.argv[2] ?? 0);
const delayMs = Number(process.env.BENCH_HSM_DELAY_MS ?? 50);
const inner = await createResolver(loadKeyConfig(process.env));
/** @type {import('../../src/keys/types.js').KeyResolver} */
const keys = {
  resolve: (identity) => new Promise((r) => setTimeout(r, delayMs)).then(() => inner.resolve(identity)),
  close: () => inner.close(),
};
const server = await createServer({ keys });
const bound = await server.listen(port, '127.0.0.1');

const loop = monitorEventLoopDelay({ resolution: 1 });
/** @type {number[]} */
let pauses = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) pauses.push(e.duration);
}).observe({ entryTypes: ['gc'] });
let watching = false;
process.on('SIGUSR2', () => {
  if (watching) {
    const totalMs = pauses.reduce((a, b) => a + b, 0);
    const gc = { pauses: pauses.length, totalMs, maxMs: Math.max(0, ...pauses), loopDelayP99Ms: Math.max(0, loop.percentile(99) / 1e6 - 1) };
    process.stderr.write(`GC ${JSON.stringify(gc)}\n`);
  }
  watching = true;
  pauses = [];
  loop.reset();
  loop.enable();
});
process.stdout.write(`READY ${bound.port}\n`);

for (const sig of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
  process.once(sig, () => {
    void server.close().finally(() => process.exit(0));
  });
}
