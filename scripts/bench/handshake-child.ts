/**
 * A stream of new handshakes from a process of its own, for the isolation measurement: run in
 * the request generator's process, the handshakes' client work would delay the generator's own
 * reading of replies, and the p99 would measure the generator, not the server.
 *
 * Usage: BENCH_MASTER_HEX=<master key> tsx scripts/bench/handshake-child.ts <port> <seconds> <concurrency> <prefix>
 * (the key in the environment: keys never go on a command line). Prints one JSON line: the
 * HandshakeRun without its latencies.
 */
import { deriveSoftware } from '../../src/keys/derive.js';
import { runHandshakes } from './load.js';

const [portArg, secondsArg, concurrencyArg, prefix] = process.argv.slice(2);
const master = Buffer.from(process.env.BENCH_MASTER_HEX ?? '', 'hex');
const run = await runHandshakes(
  { port: Number(portArg), pskFor: (s) => deriveSoftware(master, Buffer.from(s, 'utf8')), path: ['whoami'] },
  { seconds: Number(secondsArg), concurrency: Number(concurrencyArg), prefix: prefix ?? 'IH-' },
);
const { latencies: _latencies, ...summary } = run;
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exit(0);
