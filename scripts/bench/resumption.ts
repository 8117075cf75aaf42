/**
 * `npm run bench -- --resumption [--quick]`: the server's CPU per abbreviated handshake (RFC 5246
 * 7.3, by ticket and by session ID) against a full one (issue 13: at most a third, and no HSM
 * call). The real `coap-psk serve` on a SoftHSM token with the derived-key cache off, so each
 * full handshake derives its key in the HSM; `openssl s_client` is the client, one handshake per
 * process, sixteen processes at a time (resumed runs start from a session a first run saved with
 * -sess_out). The server's CPU is read from /proc before and after each series (all its
 * threads, so the HSM library's too), so the clients' own CPU is not counted.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deriveSoftware } from '../../src/keys/derive.js';
import { freeUdpPort } from '../../test/helpers/ports.js';
import { createTestToken } from '../../test/helpers/softhsm.js';
import { startPinned } from './procs.js';

/**
 * CPU time of every thread of `pid` (the event loop, libuv's pool, the HSM library's threads),
 * in seconds, from /proc/<pid>/task/<tid>/schedstat: nanoseconds, where /proc/<pid>/stat counts
 * 10 ms ticks, too coarse for a few hundred handshakes of a millisecond or less.
 */
function threadCpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}

const MASTER_HEX = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'; // a bench-only test key
const SERIAL = 'BENCH-RESUME-1';
const SERVER_CORE = 0;
const CONCURRENCY = 16;

export interface ResumptionBenchOptions {
  root: string;
  quick: boolean;
  say: (s: string) => void;
}

interface Series {
  kind: string;
  handshakes: number;
  usPerHandshake: number;
}

export async function benchResumption(o: ResumptionBenchOptions): Promise<string[]> {
  const n = o.quick ? 100 : 400;
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-resumption-'));
  const token = await createTestToken({ label: 'bench-resumption', pin: 'bench-pin', keys: [{ label: 'bench-master', hex: MASTER_HEX }] });
  const port = await freeUdpPort();
  const env: NodeJS.ProcessEnv = { ...process.env, ...token.env, COAP_PSK_KEY_ENCODING: 'raw', COAP_PSK_LOG_LEVEL: 'warn', COAP_PSK_CACHE_MAX: '0' };
  const server = await startPinned('serve', SERVER_CORE, process.execPath, [path.join(o.root, 'bin/coap-psk.js'), 'serve', '--host', '127.0.0.1', '--port', String(port)], port, env);
  const key = deriveSoftware(Buffer.from(MASTER_HEX, 'hex'), Buffer.from(SERIAL)).toString('hex');
  const sClient = (args: string[], cipher = 'PSK-AES128-CCM8'): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile('openssl', ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${port}`, '-psk_identity', SERIAL, '-psk', key, '-cipher', cipher, ...args], {
        timeout: 10_000, encoding: 'latin1',
      }, (err, stdout) => (err ? reject(err) : resolve(stdout))).stdin?.end();
    });
  const idleRate = async (): Promise<number> => {
    const before = threadCpuSeconds(server.pid);
    await new Promise((r) => setTimeout(r, 3000));
    return (threadCpuSeconds(server.pid) - before) / 3000;
  };
  // CONCURRENCY clients at a time, so that the series is short against the server's idle CPU
  // (its timers), which is measured apart and taken off.
  const series = async (kind: string, args: string[], expect: RegExp, idlePerMs: number, cipher?: string): Promise<Series> => {
    await sClient(args, cipher); // warm-up
    const before = threadCpuSeconds(server.pid);
    const started = Date.now();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        const out = await sClient(args, cipher);
        if (!expect.test(out)) throw new Error(`${kind}: handshake ${i + 1} was not ${expect}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    const cpu = threadCpuSeconds(server.pid) - before - idlePerMs * (Date.now() - started);
    return { kind, handshakes: n, usPerHandshake: (cpu / n) * 1e6 };
  };
  try {
    const ticket = path.join(dir, 'ticket.pem');
    const id = path.join(dir, 'id.pem');
    o.say(`resumption: ${n} handshakes of each kind against coap-psk serve (cache off, SoftHSM)`);
    const idle = await idleRate();
    // Warms the code paths up before anything is measured.
    for (let i = 0; i < 20; i++) await sClient(['-reconnect']);
    const full = await series('full (HSM derivation)', ['-no_ticket'], /^New, /m, idle);
    await sClient(['-sess_out', ticket]);
    await sClient(['-no_ticket', '-sess_out', id]);
    const rows = [full, await series('resumed by ticket', ['-sess_in', ticket], /^Reused, /m, idle), await series('resumed by session ID', ['-no_ticket', '-sess_in', id], /^Reused, /m, idle)];
    // ECDHE-PSK (libcoap's preference): the full handshake adds an X25519 exchange, which resuming skips too.
    const ecdhe = 'ECDHE-PSK-CHACHA20-POLY1305';
    const ecdheTicket = path.join(dir, 'ecdhe.pem');
    const ecdheFull = await series('full, ECDHE-PSK-CHACHA20-POLY1305', ['-no_ticket'], /^New, /m, idle, ecdhe);
    await sClient(['-sess_out', ecdheTicket], ecdhe);
    rows.push(ecdheFull, await series('resumed by ticket, ECDHE-PSK-CHACHA20-POLY1305', ['-sess_in', ecdheTicket], /^Reused, /m, idle, ecdhe));
    o.say(`resumption: server idle CPU ${(idle * 1e3 * 100).toFixed(1)} % of a core, taken off`);
    return [
      '| handshake | handshakes | server CPU per handshake | of the full one (same suite) |',
      '| --- | ---: | ---: | ---: |',
      ...rows.map((r) => {
        const base = r.kind.includes('ECDHE') ? rows.find((x) => x.kind.startsWith('full, ECDHE'))! : full;
        return `| ${r.kind} | ${r.handshakes} | ${r.usPerHandshake.toFixed(0)} µs | ${((100 * r.usPerHandshake) / base.usPerHandshake).toFixed(0)} % |`;
      }),
    ];
  } finally {
    await server.stop();
    await token.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}
