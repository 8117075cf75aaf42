// The Go test client on Debian's pion/dtls v2 (test/peers/pion-resume-client/main.go), built once per
// test process into a temp dir with the Debian Go packages (GOPATH=/usr/share/gocode, no modules).
// It resumes by session ID through a SessionStore; pion v2 has no tickets.
// (Branch h11 adds test/peers/pion-client, a one-handshake client for small MTUs; once both are
// merged, that client can take a resume flag with this SessionStore and this one can go.)

import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ClientReport, type OwnClientRun, buildInTempDir, runOwnClient } from './own-clients.js';

const SOURCE = fileURLToPath(new URL('../peers/pion-resume-client/main.go', import.meta.url));
let built: Promise<string> | undefined;

/** Compiles main.go (scripts/install-deps.sh installs golang-go and golang-github-pion-dtls.v2-dev). */
export function buildPionResumeClient(): Promise<string> {
  built ??= buildInTempDir('pion-resume-client', 'is golang-github-pion-dtls.v2-dev installed?', async (dir) => {
    const src = path.join(dir, 'src');
    mkdirSync(src);
    copyFileSync(SOURCE, path.join(src, 'main.go'));
    const binary = path.join(dir, 'pion-resume-client');
    await promisify(execFile)('go', ['build', '-o', binary, 'main.go'], {
      cwd: src,
      timeout: 180_000,
      env: { ...process.env, GOPATH: '/usr/share/gocode', GO111MODULE: 'off', GOFLAGS: '', GOCACHE: path.join(dir, 'cache') },
    });
    return binary;
  });
  return built;
}

export interface PionResumeClientOptions extends OwnClientRun {
  /** Reconnect once from a new source port, offering the stored session. */
  resume?: boolean;
  cipher?: 'ccm8' | 'ccm' | 'gcm' | 'cbc';
}

export async function pionResumeClient(opts: PionResumeClientOptions): Promise<ClientReport> {
  return runOwnClient(await buildPionResumeClient(), opts, {
    ...(opts.resume ? { RESUME: 'id' } : {}),
    ...(opts.cipher ? { CIPHER: opts.cipher } : {}),
  });
}
