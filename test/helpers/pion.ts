/**
 * The pion/dtls test client (test/peers/pion-client/main.go), built from Debian's
 * golang-github-pion-dtls.v2-dev into a temp dir once per test process, and run bounded.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runBounded, type RunResult } from './peers.js';

const GOPATH = '/usr/share/gocode';
const SOURCE = resolve(import.meta.dirname, '../peers/pion-client');

/** True when Go and pion/dtls are installed (scripts/install-deps.sh installs both). */
export const pionAvailable = existsSync('/usr/bin/go') && existsSync(join(GOPATH, 'src/github.com/pion/dtls/v2'));

let built: Promise<string> | undefined;

/** Builds the client (once) and returns the binary's path. */
export function pionClientBinary(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pion-client-'));
    const binary = join(dir, 'pion-client');
    const res = await runBounded('go', ['build', '-o', binary, join(SOURCE, 'main.go')], {
      timeoutMs: 180_000,
      env: { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '', GOCACHE: join(dir, 'cache'), CGO_ENABLED: '0' },
    });
    if (res.exitCode !== 0) throw new Error(`go build pion-client failed: ${res.stderr}`);
    return binary;
  })();
  return built;
}

export interface PionOptions {
  port: number;
  identity: string;
  /** The PSK as hex: passed in the environment, never on the command line. */
  pskHex: string;
  mtu?: number;
  suite?: string;
  /** CoAP GET of this path. */
  get?: string;
  timeoutSec?: number;
}

export interface PionResult extends RunResult {
  handshakeOk: boolean;
  code?: string;
  payload?: string;
}

export async function pionClient(opts: PionOptions): Promise<PionResult> {
  const binary = await pionClientBinary();
  const args = ['-addr', `127.0.0.1:${opts.port}`, '-identity', opts.identity, '-mtu', String(opts.mtu ?? 1200), '-timeout', `${opts.timeoutSec ?? 8}s`];
  if (opts.suite) args.push('-suite', opts.suite);
  if (opts.get) args.push('-get', opts.get);
  const res = await runBounded(binary, args, { timeoutMs: ((opts.timeoutSec ?? 8) + 5) * 1000, env: { ...process.env, PION_PSK_HEX: opts.pskHex } });
  const reply = /^reply code=(\S+) payload=(.*)$/m.exec(res.stdout);
  return { ...res, handshakeOk: /^handshake ok/m.test(res.stdout), code: reply?.[1], payload: reply?.[2] };
}
