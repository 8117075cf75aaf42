// What our own test clients (test/peers/mbedtls-client, test/peers/pion-resume-client) share: a build
// into a temp dir removed when the test process exits, how they are run (key in the
// environment, never argv), and their output, one line per event.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RunResult, runBounded } from './peers.js';
import { LOOPBACK } from './ports.js';

/** Runs `build(dir)` in a fresh temp dir; a failure names the client (`prefix`) and what to install (`hint`). */
export async function buildInTempDir(prefix: string, hint: string, build: (dir: string) => Promise<string>): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  try {
    return await build(dir);
  } catch (e) {
    throw new Error(`building ${prefix} failed (${hint}; scripts/install-deps.sh): ${(e as Error).message}`);
  }
}

export interface OwnClientRun {
  port: number;
  host?: string;
  identity: string;
  pskHex: string;
  /** Sent after each handshake (a raw CoAP message); the reply is read back. */
  request?: Buffer;
  /** The client's read timeout and handshake limit. Default 2000 ms. */
  clientTimeoutMs?: number;
  /** Hard kill. Default 20 s. */
  timeoutMs?: number;
}

/** Runs a built client with the common settings plus its own `env`, and parses its report. */
export async function runOwnClient(binary: string, opts: OwnClientRun, env: Record<string, string>): Promise<ClientReport> {
  const fullEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    PSK_IDENTITY: opts.identity,
    PSK_KEY_HEX: opts.pskHex,
    TIMEOUT_MS: String(opts.clientTimeoutMs ?? 2000),
    ...(opts.request ? { COAP_REQUEST_HEX: opts.request.toString('hex') } : {}),
    ...env,
  };
  const res = await runBounded(binary, [opts.host ?? LOOPBACK, String(opts.port)], { timeoutMs: opts.timeoutMs ?? 20_000, env: fullEnv });
  return { ...res, ...parseClientReport(res.stdout) };
}

export interface ClientHandshake {
  ok: boolean;
  suite?: string;
  /** The server issued a ticket in this handshake. */
  ticket?: boolean;
  sessionId?: string;
  error?: string;
}

export interface ClientReport extends RunResult {
  handshakes: ClientHandshake[];
  /** One per request sent; undefined where no reply came before the client's timeout. */
  replies: (Buffer | undefined)[];
  /** With a reconnect: whether the second handshake kept the first one's master secret. */
  resumed?: boolean;
  /** What the client presented on reconnecting: a ticket if it had one, else the session ID. */
  offered?: 'ticket' | 'id';
}

export function parseClientReport(stdout: string): Pick<ClientReport, 'handshakes' | 'replies' | 'resumed' | 'offered'> {
  const handshakes: ClientHandshake[] = [];
  const replies: (Buffer | undefined)[] = [];
  let resumed: boolean | undefined;
  let offered: 'ticket' | 'id' | undefined;
  for (const line of stdout.split('\n')) {
    let m = /^handshake \d+: ok suite=(\S+) ticket=(yes|no) session_id=([0-9a-f]*)$/.exec(line);
    if (m) handshakes.push({ ok: true, suite: m[1], ticket: m[2] === 'yes', sessionId: m[3] });
    else if ((m = /^handshake \d+: failed (.*)$/.exec(line))) handshakes.push({ ok: false, error: m[1] });
    else if ((m = /^reply \d+: (none|[0-9a-f]+)$/.exec(line))) replies.push(m[1] === 'none' ? undefined : Buffer.from(m[1]!, 'hex'));
    else if ((m = /^resumed: (yes|no) offered=(ticket|id)$/.exec(line))) {
      resumed = m[1] === 'yes';
      offered = m[2] as 'ticket' | 'id';
    }
  }
  return { handshakes, replies, resumed, offered };
}
