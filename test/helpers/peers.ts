// Real DTLS/CoAP peers for interop tests: libcoap's coap-client/coap-server (OpenSSL and GnuTLS
// builds), `openssl s_client` and `gnutls-cli`, each spawned as a child process on 127.0.0.1
// and killed after a hard timeout.
//
// SECRETS: these helpers put the PSK on the child's argv (the tools take no other way, except
// files). That is acceptable ONLY because these are test peers holding test keys made up for
// the tests. Never call them with a real device key, a PIN or any production secret.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePortPair, LOOPBACK } from './ports.js';

const MAX_CAPTURE = 1 << 20; // bytes of stdout/stderr kept per child

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

interface RunOptions {
  timeoutMs: number;
  input?: string | Buffer;
  /** Keep stdin open this long after writing `input`, so replies can arrive before EOF. */
  holdStdinMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Spawns one process, feeds stdin, collects output; SIGKILLs it (by pid) at the deadline. */
export function runBounded(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let stdinTimer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += d.toString('latin1');
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < MAX_CAPTURE) stderr += d.toString('latin1');
    });
    child.stdin.on('error', () => {}); // child may exit before reading stdin (EPIPE)
    if (opts.input !== undefined) child.stdin.write(opts.input);
    if (opts.holdStdinMs) stdinTimer = setTimeout(() => child.stdin.end(), opts.holdStdinMs);
    else child.stdin.end();
    const killTimer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(killTimer);
      if (stdinTimer) clearTimeout(stdinTimer);
      resolve({ exitCode, signal, stdout, stderr, timedOut, durationMs: Date.now() - started });
    };
    child.once('error', (err) => {
      stderr += `spawn ${cmd}: ${err.message}\n`;
      finish(null, null);
    });
    child.once('close', finish);
  });
}

/** libcoap's -k takes the key as text; s_client and gnutls-cli take the same bytes as hex. */
export function asciiKeyToPskHex(key: string): string {
  return Buffer.from(key, 'latin1').toString('hex');
}

// ---------------------------------------------------------------------------------------------
// coap-client-openssl / coap-client-gnutls (libcoap 4.3.1)
// ---------------------------------------------------------------------------------------------

export type CoapImpl = 'openssl' | 'gnutls';

export interface CoapClientOptions {
  impl: CoapImpl;
  identity: string;
  /** The PSK as libcoap's -k takes it: the ASCII text itself (our devices' 32 hex chars). */
  key: string;
  uri: string;
  method?: 'get' | 'put' | 'post' | 'delete' | 'fetch' | 'patch' | 'ipatch';
  /** Passed with -e; coap-client percent-decodes it (use %xx for non-ASCII bytes). */
  payload?: string;
  /** libcoap's own give-up time (-B). The child is SIGKILLed 3 s after it. Default 5. */
  timeoutSec?: number;
  /** libcoap log level (-v). 6 (info) prints the PDUs so the response code can be read;
   * 9 also prints the negotiated cipher suite. Default 6. */
  verbosity?: number;
  /** GnuTLS build only: offer only TLS_PSK_WITH_AES_128_CCM_8 (via a GnuTLS system priority
   * override file, since libcoap hard-codes its priority string). Ignored for openssl. */
  onlyCcm8?: boolean;
  extraArgs?: string[];
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
}

export interface CoapClientResult extends RunResult {
  /** Exact response payload (written by coap-client to a file with -o). */
  payload: string;
  /** Last response code seen, e.g. '2.05', '4.04'; undefined when none arrived. */
  responseCode?: string;
  /** True when a 2.xx response arrived. coap-client 4.3.1 exits 0 even on failure! */
  ok: boolean;
  /** Negotiated suite, when the log level shows it (verbosity 9), e.g. 'ECDHE-PSK-CHACHA20-POLY1305'. */
  cipher?: string;
}

// GnuTLS applies this file's [overrides] on top of any priority string an application sets.
const GNUTLS_ONLY_CCM8 = `[overrides]
tls-disabled-kx = ECDHE-PSK
tls-disabled-kx = DHE-PSK
tls-disabled-kx = RSA-PSK
tls-disabled-cipher = CHACHA20-POLY1305
tls-disabled-cipher = AES-128-GCM
tls-disabled-cipher = AES-256-GCM
tls-disabled-cipher = AES-128-CCM
tls-disabled-cipher = AES-256-CCM
tls-disabled-cipher = AES-256-CCM-8
tls-disabled-cipher = AES-128-CBC
tls-disabled-cipher = AES-256-CBC
tls-disabled-cipher = CAMELLIA-128-CBC
tls-disabled-cipher = CAMELLIA-256-CBC
tls-disabled-cipher = CAMELLIA-128-GCM
tls-disabled-cipher = CAMELLIA-256-GCM
`;

const RESPONSE_LINE = /^v:1 t:(?:CON|NON|ACK|RST) c:(\d\.\d\d) /gm;
const ERROR_LINE = /^([45]\.\d\d)(?: |$)/gm; // what coap-client prints on stderr for 4.xx/5.xx

function lastMatch(re: RegExp, text: string): string | undefined {
  let last: string | undefined;
  for (const m of text.matchAll(re)) last = m[1];
  return last;
}

export async function coapClient(opts: CoapClientOptions): Promise<CoapClientResult> {
  const waitSec = opts.timeoutSec ?? 5;
  const dir = await mkdtemp(path.join(tmpdir(), 'coap-client-'));
  const outFile = path.join(dir, 'payload');
  try {
    const env = { ...process.env };
    if (opts.impl === 'gnutls' && opts.onlyCcm8) {
      const prio = path.join(dir, 'gnutls-priority.conf');
      await writeFile(prio, GNUTLS_ONLY_CCM8);
      env.GNUTLS_SYSTEM_PRIORITY_FILE = prio;
    }
    const args = [
      '-B', String(waitSec),
      '-v', String(opts.verbosity ?? 6),
      '-m', opts.method ?? 'get',
      '-u', opts.identity,
      '-k', opts.key, // test key only, see the note at the top
      '-o', outFile,
      ...(opts.payload !== undefined ? ['-e', opts.payload] : []),
      ...(opts.extraArgs ?? []),
      opts.uri,
    ];
    const command = opts.netns ? ['ip', 'netns', 'exec', opts.netns, `coap-client-${opts.impl}`] : [`coap-client-${opts.impl}`];
    const res = await runBounded(command[0], [...command.slice(1), ...args], {
      timeoutMs: (waitSec + 3) * 1000,
      env,
    });
    const payload = await readFile(outFile, 'latin1').catch(() => '');
    const log = res.stdout + '\n' + res.stderr;
    const responseCode = lastMatch(RESPONSE_LINE, log) ?? lastMatch(ERROR_LINE, res.stderr);
    const cipher =
      /Using cipher: (\S+)/.exec(log)?.[1] ??
      /Selected cipher suite: GNUTLS_(\S+)/.exec(log)?.[1];
    const ok = !res.timedOut && responseCode !== undefined && responseCode.startsWith('2.');
    return { ...res, payload, responseCode, ok, cipher };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// openssl s_client -dtls1_2 with PSK
// ---------------------------------------------------------------------------------------------

export interface SClientOptions {
  port: number;
  host?: string;
  identity: string;
  /** The PSK bytes in hex (for a libcoap ASCII key: asciiKeyToPskHex(key)). */
  pskHex: string;
  /** OpenSSL cipher name, e.g. 'PSK-AES128-CCM8'. */
  cipher: string;
  /** Hard kill after this. A wrong key makes s_client retransmit forever. Default 5. */
  timeoutSec?: number;
  /** Sent as application data after the handshake (e.g. a raw CoAP message). */
  input?: string | Buffer;
  /** How long stdin stays open after `input`, so a reply can come back. Default 1000 ms. */
  holdStdinMs?: number;
  /** s_client -mtu: sets the link MTU and stops OpenSSL querying it (s_client has no
   * -no_query_mtu, only s_server has). Small values fragment the handshake messages. */
  mtu?: number;
  extraArgs?: string[];
}

export interface SClientResult extends RunResult {
  handshakeOk: boolean;
  cipher?: string;
  protocol?: string;
}

export async function sClient(opts: SClientOptions): Promise<SClientResult> {
  const args = [
    's_client', '-dtls1_2', '-brief',
    '-psk_identity', opts.identity,
    '-psk', opts.pskHex, // test key only, see the note at the top
    '-cipher', opts.cipher,
    '-connect', `${opts.host ?? LOOPBACK}:${opts.port}`,
    ...(opts.mtu ? ['-mtu', String(opts.mtu)] : []),
    ...(opts.extraArgs ?? []),
  ];
  const res = await runBounded('openssl', args, {
    timeoutMs: (opts.timeoutSec ?? 5) * 1000,
    input: opts.input,
    holdStdinMs: opts.input !== undefined ? (opts.holdStdinMs ?? 1000) : undefined,
  });
  // -brief reports on stderr: CONNECTION ESTABLISHED / Protocol version: / Ciphersuite:
  const handshakeOk = /^CONNECTION ESTABLISHED$/m.test(res.stderr);
  const cipher = /^Ciphersuite: (\S+)/m.exec(res.stderr)?.[1];
  const protocol = /^Protocol version: (\S+)/m.exec(res.stderr)?.[1];
  return { ...res, handshakeOk, cipher, protocol };
}

// ---------------------------------------------------------------------------------------------
// gnutls-cli --udp with PSK
// ---------------------------------------------------------------------------------------------

/** DTLS 1.2, plain PSK key exchange, AES-128-CCM-8 only: TLS_PSK_WITH_AES_128_CCM_8. */
export const GNUTLS_PRIORITY_PSK_CCM8 =
  'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CCM-8:-MAC-ALL:+AEAD';

export interface GnutlsCliOptions {
  port: number;
  host?: string;
  identity: string;
  pskHex: string;
  /** GnuTLS priority string. Default GNUTLS_PRIORITY_PSK_CCM8. */
  priority?: string;
  timeoutSec?: number;
  input?: string | Buffer;
  holdStdinMs?: number;
  extraArgs?: string[];
}

export interface GnutlsCliResult extends RunResult {
  handshakeOk: boolean;
  /** e.g. '(DTLS1.2-X.509)-(PSK)-(AES-128-CCM-8)' */
  description?: string;
}

export async function gnutlsCli(opts: GnutlsCliOptions): Promise<GnutlsCliResult> {
  const args = [
    '--udp', '--port', String(opts.port),
    '--pskusername', opts.identity,
    '--pskkey', opts.pskHex, // test key only, see the note at the top
    '--priority', opts.priority ?? GNUTLS_PRIORITY_PSK_CCM8,
    ...(opts.extraArgs ?? []),
    opts.host ?? LOOPBACK,
  ];
  const res = await runBounded('gnutls-cli', args, {
    timeoutMs: (opts.timeoutSec ?? 5) * 1000,
    input: opts.input,
    holdStdinMs: opts.input !== undefined ? (opts.holdStdinMs ?? 1000) : undefined,
  });
  const handshakeOk = /^- Handshake was completed$/m.test(res.stdout);
  const description = /^- Description: (.+)$/m.exec(res.stdout)?.[1];
  return { ...res, handshakeOk, description };
}

// ---------------------------------------------------------------------------------------------
// coap-server-openssl: libcoap's reference server, the baseline for interop and benchmarks
// ---------------------------------------------------------------------------------------------

export interface CoapServerOptions {
  /** PSK as text (-k); every identity is accepted with it. */
  key: string;
  /** Identity hint (-h). Default 'CoAP' (libcoap's default). '' sends none. */
  hint?: string;
  /** -v level. Default 3 (warnings). */
  verbosity?: number;
  /** Hard limit on the server's life; it is SIGKILLed after this. Default 300. */
  lifetimeSec?: number;
  extraArgs?: string[];
}

export interface CoapServer {
  /** The coaps (DTLS) port: coap-server's -p plus one. */
  port: number;
  /** The plain coap (UDP) port given with -p. */
  plainPort: number;
  pid: number;
  /** Output captured so far (stdout and stderr interleaved). */
  log(): string;
  /** SIGTERM, then SIGKILL after 2 s; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
}

/** True once something holds UDP 127.0.0.1:port. Read from /proc/net/udp (Linux) rather than
 * by trying to bind it ourselves: a probe bind could steal the port from the starting server. */
async function udpPortTaken(port: number): Promise<boolean> {
  const table = await readFile('/proc/net/udp', 'latin1').catch(() => '');
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return table.includes(local);
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `coap-server-openssl -A 127.0.0.1 -p P -k KEY -h HINT` on a free port pair and waits
 * until its DTLS port is bound. Resources served include /, /time, /.well-known/core, /async,
 * /example_data. Retries (bounded) when the port pair was taken in the meantime.
 */
export async function startCoapServerOpenssl(opts: CoapServerOptions): Promise<CoapServer> {
  let lastLog = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const plainPort = await freePortPair();
    const args = [
      '-A', LOOPBACK,
      '-p', String(plainPort),
      '-k', opts.key, // test key only, see the note at the top
      '-h', opts.hint ?? 'CoAP',
      '-v', String(opts.verbosity ?? 3),
      ...(opts.extraArgs ?? []),
    ];
    const child = spawn('coap-server-openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const collect = (d: Buffer) => {
      if (log.length < MAX_CAPTURE) log += d.toString('latin1');
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let spawnError: Error | undefined;
    child.once('error', (e) => (spawnError = e));
    const lifeTimer = setTimeout(() => child.kill('SIGKILL'), (opts.lifetimeSec ?? 300) * 1000);
    lifeTimer.unref();
    child.once('exit', () => clearTimeout(lifeTimer));

    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const hard = setTimeout(() => child.kill('SIGKILL'), 2000);
        await waitExit(child);
        clearTimeout(hard);
      }
    };

    // Ready when the DTLS port is bound by the child; bounded to 5 s.
    for (let i = 0; i < 100; i++) {
      if (spawnError || child.exitCode !== null || child.signalCode !== null) break;
      if (await udpPortTaken(plainPort + 1)) {
        return { port: plainPort + 1, plainPort, pid: child.pid!, log: () => log, stop };
      }
      await sleep(50);
    }
    await stop();
    lastLog = spawnError ? spawnError.message : log;
  }
  throw new Error(`coap-server-openssl did not start: ${lastLog.trim().split('\n').pop() ?? ''}`);
}
