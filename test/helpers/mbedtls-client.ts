// The C test client on Debian's mbedTLS 2.28 (test/peers/mbedtls-client/client.c), built once
// per test process into a temp dir, and `openssl s_server` as a resuming reference server.
//
// The client takes its PSK from the environment (PSK_KEY_HEX), not argv. s_server takes its
// key on argv: test keys only, as for the helpers of ./peers.ts.

import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ClientReport, type OwnClientRun, buildInTempDir, runOwnClient } from './own-clients.js';
import { freeUdpPort, LOOPBACK } from './ports.js';

const SOURCE = fileURLToPath(new URL('../peers/mbedtls-client/client.c', import.meta.url));
let built: Promise<string> | undefined;

/** Compiles client.c with the system's mbedTLS (scripts/install-deps.sh installs libmbedtls-dev). */
export function buildMbedtlsClient(): Promise<string> {
  built ??= buildInTempDir('mbedtls-client', 'is libmbedtls-dev installed?', async (dir) => {
    const binary = path.join(dir, 'mbedtls-client');
    await promisify(execFile)('cc', ['-O1', '-Wall', '-o', binary, SOURCE, '-lmbedtls', '-lmbedx509', '-lmbedcrypto'], { timeout: 60_000 });
    return binary;
  });
  return built;
}

export interface MbedtlsClientOptions extends OwnClientRun {
  /** Reconnect once after the first session, resuming it by session ID or by ticket. */
  resume?: 'none' | 'id' | 'ticket';
  /** Flip a byte of the saved ticket before reconnecting. */
  tamperTicket?: boolean;
  /** mbedTLS suite names, e.g. TLS-PSK-WITH-AES-128-CCM-8. */
  cipherSuites?: string[];
}

export async function mbedtlsClient(opts: MbedtlsClientOptions): Promise<ClientReport> {
  return runOwnClient(await buildMbedtlsClient(), opts, {
    RESUME: opts.resume ?? 'none',
    ...(opts.tamperTicket ? { TAMPER_TICKET: '1' } : {}),
    ...(opts.cipherSuites ? { CIPHERSUITES: opts.cipherSuites.join(',') } : {}),
  });
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
