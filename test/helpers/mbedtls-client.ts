// The C test client on Debian's mbedTLS 2.28 (test/peers/mbedtls-client/client.c), built once
// per test process into a temp dir, and `openssl s_server` as a resuming reference server.
//
// The client takes its PSK from the environment (PSK_KEY_HEX), not argv. s_server takes its
// key on argv: test keys only, as for the helpers of ./peers.ts.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runBounded, type RunResult } from './peers.js';
import { freeUdpPort, LOOPBACK } from './ports.js';

const SOURCE = fileURLToPath(new URL('../peers/mbedtls-client/client.c', import.meta.url));
let built: Promise<string> | undefined;

/** Compiles client.c with the system's mbedTLS (scripts/install-deps.sh installs libmbedtls-dev). */
export function buildMbedtlsClient(): Promise<string> {
  built ??= (async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'mbedtls-client-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const binary = path.join(dir, 'mbedtls-client');
    try {
      await promisify(execFile)('cc', ['-O1', '-Wall', '-o', binary, SOURCE, '-lmbedtls', '-lmbedx509', '-lmbedcrypto'], { timeout: 60_000 });
    } catch (e) {
      throw new Error(`building the mbedTLS client failed (is libmbedtls-dev installed? scripts/install-deps.sh): ${(e as Error).message}`);
    }
    return binary;
  })();
  return built;
}

export interface MbedtlsClientOptions {
  port: number;
  host?: string;
  identity: string;
  pskHex: string;
  /** Sent after each handshake (a raw CoAP message); the reply is read back. */
  request?: Buffer;
  /** Reconnect once after the first session, resuming it by session ID or by ticket. */
  resume?: 'none' | 'id' | 'ticket';
  /** Flip a byte of the saved ticket before reconnecting. */
  tamperTicket?: boolean;
  /** mbedTLS suite names, e.g. TLS-PSK-WITH-AES-128-CCM-8. */
  cipherSuites?: string[];
  /** The client's read timeout and handshake retransmission limit. Default 2000 ms. */
  clientTimeoutMs?: number;
  /** Hard kill. Default 20 s. */
  timeoutMs?: number;
}

export interface MbedtlsHandshake {
  ok: boolean;
  suite?: string;
  /** The server issued a ticket in this handshake. */
  ticket?: boolean;
  sessionId?: string;
  error?: string;
}

export interface MbedtlsClientResult extends RunResult {
  handshakes: MbedtlsHandshake[];
  /** One per request sent; undefined where no reply came before the client's timeout. */
  replies: (Buffer | undefined)[];
  /** For resume 'id' or 'ticket': whether the second handshake kept the first master secret. */
  resumed?: boolean;
  /** What the client presented on reconnecting: a ticket if it had one, else the session ID. */
  offered?: 'ticket' | 'id';
}

export async function mbedtlsClient(opts: MbedtlsClientOptions): Promise<MbedtlsClientResult> {
  const binary = await buildMbedtlsClient();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    PSK_IDENTITY: opts.identity,
    PSK_KEY_HEX: opts.pskHex,
    RESUME: opts.resume ?? 'none',
    TIMEOUT_MS: String(opts.clientTimeoutMs ?? 2000),
    ...(opts.request ? { COAP_REQUEST_HEX: opts.request.toString('hex') } : {}),
    ...(opts.tamperTicket ? { TAMPER_TICKET: '1' } : {}),
    ...(opts.cipherSuites ? { CIPHERSUITES: opts.cipherSuites.join(',') } : {}),
  };
  const res = await runBounded(binary, [opts.host ?? LOOPBACK, String(opts.port)], { timeoutMs: opts.timeoutMs ?? 20_000, env });
  return { ...res, ...parseOutput(res.stdout) };
}

function parseOutput(stdout: string): Pick<MbedtlsClientResult, 'handshakes' | 'replies' | 'resumed' | 'offered'> {
  const handshakes: MbedtlsHandshake[] = [];
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

export interface SServer {
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/**
 * `openssl s_server -dtls1_2 -nocert -psk HEX` on 127.0.0.1, serving one client after another.
 * It resumes by ticket, and by session ID when the client sends no ticket (pass '-no_ticket'
 * in extraArgs to issue none). Its stdin stays open: s_server ends on EOF.
 */
export async function startOpensslSServer(opts: { pskHex: string; cipher?: string; extraArgs?: string[]; lifetimeSec?: number }): Promise<SServer> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeUdpPort();
    const args = [
      's_server', '-dtls1_2', '-accept', `${LOOPBACK}:${port}`, '-nocert',
      '-psk', opts.pskHex, // test key only
      '-cipher', opts.cipher ?? 'PSK-AES128-CCM8',
      ...(opts.extraArgs ?? []),
    ];
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let log = '';
    const collect = (d: Buffer) => {
      if (log.length < 1 << 20) log += d.toString('latin1');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.stdin.on('error', () => {});
    const life = setTimeout(() => child.kill('SIGKILL'), (opts.lifetimeSec ?? 120) * 1000);
    life.unref();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const stop = async () => {
      clearTimeout(life);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    };
    // "ACCEPT" is printed once the socket is bound; bounded to 5 s.
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      if (log.includes('ACCEPT')) return { port, log: () => log, stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop();
  }
  throw new Error('openssl s_server did not start');
}
