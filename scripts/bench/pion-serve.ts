/**
 * What `--compare` (./compare.ts) and `--resumption` (./resumption.ts) share: `coap-psk serve`
 * processes as the main bench runs them (defaults, a log line per handshake at info) on a
 * SoftHSM token with the derived-key cache off, pinned to the server core, and pion-load's
 * phases against them from the generator core, each run with serials of its own.
 */
import path from 'node:path';
import { createTestToken, type TestToken } from '../../test/helpers/softhsm.js';
import { freeUdpPort } from '../../test/helpers/ports.js';
import { buildPionLoad, runPion, type PionKey, type PionMeasured } from './pion.js';
import { startPinned, type ServerProc } from './procs.js';

const MASTER_HEX = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'; // a bench-only test key
const SERVER_CORE = 0;
const GENERATOR_CORE = 1;
/** pion-load's devices at once, in every phase. */
export const CONCURRENCY = 16;
export const PHASES = ['handshakes', 'resumptions'] as const;

export interface PionServe {
  /** `dir`'s bin/coap-psk.js serving on a free UDP port of 127.0.0.1; stopped by close(). */
  start(name: string, dir: string, env?: NodeJS.ProcessEnv): Promise<ServerProc>;
  /** One run of pion-load's `phase` for `seconds` against `srv` (GET /whoami on each session). */
  run(srv: ServerProc, phase: string, seconds: number): Promise<PionMeasured>;
  /** Stops the servers, removes pion-load's build and the token. */
  close(): Promise<void>;
}

/** A token labelled `label`, pion-load built from `root`; run serials start with `prefix`. */
export async function openPionServe(root: string, label: string, prefix: string): Promise<PionServe> {
  const token: TestToken = await createTestToken({ label, pin: 'bench-pin', keys: [{ label: 'bench-master', hex: MASTER_HEX }] });
  const pion = buildPionLoad(root);
  const servers: ServerProc[] = [];
  const key: PionKey = { masterHex: MASTER_HEX };
  let runs = 0;
  return {
    async start(name, dir, env = {}) {
      const port = await freeUdpPort();
      const serveEnv: NodeJS.ProcessEnv = {
        ...process.env, ...token.env, COAP_PSK_KEY_ENCODING: 'raw', COAP_PSK_LOG_LEVEL: 'info', COAP_PSK_CACHE_MAX: '0',
        COAP_PSK_PKCS11_SYNC: 'true', ...env,
      };
      const srv = await startPinned(name, SERVER_CORE, process.execPath, [path.join(dir, 'bin/coap-psk.js'), 'serve', '--host', '127.0.0.1', '--port', String(port)], port, serveEnv);
      servers.push(srv);
      return srv;
    },
    run: (srv, phase, seconds) => runPion(pion.bin, GENERATOR_CORE, srv, key,
      ['-phase', phase, '-seconds', String(seconds), '-concurrency', String(CONCURRENCY), '-prefix', `${prefix}${runs++}-`, '-path', 'whoami'], 120_000),
    async close() {
      for (const s of servers) await s.stop();
      pion.cleanup();
      await token.cleanup();
    },
  };
}

/** Three short runs of each phase through `run`, before anything is measured (V8 compiles both paths; CONTRIBUTING, pitfalls). */
export async function warmUp(run: (phase: string, seconds: number) => Promise<unknown>): Promise<void> {
  for (let w = 0; w < 3; w++) for (const phase of PHASES) await run(phase, 1);
}
