/**
 * `coap-psk derive` against the reference: the Go program of the write-up this project
 * started from (../shared/000_ef1f821939022967.txt), built from that text with Debian's Go and
 * miekg/pkcs11, run on the same SoftHSM token. Its output lines must be ours, byte for byte.
 *
 * The only change made to the Go source is its hard-coded module path (a Nitrokey module),
 * replaced by SoftHSM's. It picks the first slot with a token, so the test token is alone in
 * its SoftHSM configuration. It takes the PIN on its command line: a test PIN, test peer only.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run.js';
import { createTestToken, SOFTHSM_MODULE, type TestToken } from '../helpers/softhsm.js';

const run = promisify(execFile);
const WRITE_UP = resolve('../shared/000_ef1f821939022967.txt');
const GOPATH = '/usr/share/gocode'; // Debian's golang-github-miekg-pkcs11-dev
const PIN = 'reference-test-pin';
const LABEL = 'MyAESKey'; // the label the write-up uses

/** The Go block of the write-up, with the module path made configurable. */
function referenceSource(): string {
  const text = readFileSync(WRITE_UP, 'utf8');
  const m = /```Go\n([\s\S]*?)```/.exec(text);
  if (!m) throw new Error('no Go program in the write-up');
  // The live line, not the commented-out OpenSC one above it.
  const patched = m[1].replace('pkcs11.New("/usr/local/lib/libsc-hsm-pkcs11.so")', 'pkcs11.New(os.Getenv("REFERENCE_PKCS11_MODULE"))');
  if (patched === m[1]) throw new Error('module path not found in the Go program');
  return patched;
}

const available = existsSync(WRITE_UP) && existsSync('/usr/bin/go') && existsSync(join(GOPATH, 'src/github.com/miekg/pkcs11'));

describe.skipIf(!available)('derive matches the reference Go program', () => {
  let dir: string;
  let binary: string;
  let token: TestToken;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'go-reference-'));
    await writeFile(join(dir, 'main.go'), referenceSource());
    binary = join(dir, 'reference');
    await run('go', ['build', '-o', binary, 'main.go'], {
      cwd: dir,
      env: { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '', GOCACHE: join(dir, 'cache'), CGO_ENABLED: '1' },
    });
    token = await createTestToken({ label: 'reference', pin: PIN, keys: [{ label: LABEL, hex: '00112233445566778899aabbccddeeff' }] });
  }, 120_000);

  afterAll(async () => {
    await token?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function reference(serials: string[]): Promise<string> {
    // println writes to stderr: that is where the reference's lines are.
    try {
      const { stderr } = await run(binary, [LABEL, PIN, ...serials], {
        env: { ...process.env, SOFTHSM2_CONF: token.confPath, REFERENCE_PKCS11_MODULE: SOFTHSM_MODULE },
        maxBuffer: 64 * 1024 * 1024,
      });
      return stderr;
    } catch (e) {
      // The error message would repeat every argument: keep the reference's own words only.
      throw new Error(`reference program failed: ${String((e as { stderr?: string }).stderr).slice(0, 2000)}`);
    }
  }

  const ours = (args: string[], stdin = '') => runCli(['derive', ...args], { ...token.env, COAP_PSK_KEY_LABEL: LABEL }, stdin);

  it('gives the issue vectors, and the same lines, for the serials of the write-up', async () => {
    const serials = ['SN12345', 'SN134535', 'SN1241451', 'SN14145', 'SN-é-ü', 'a,b"c'];
    const expected = await reference(serials);
    expect(expected).toContain('SN12345 612b3b3f59f516b24a2c831168f701ea\n');
    expect(expected).toContain('SN134535 975b82f23f96d87dfc953109ad38ce3d\n');
    const r = await ours(serials);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected);
  });

  it('agrees on a batch of 50,000 serials read from a file, plain and CSV', async () => {
    const serials = Array.from({ length: 50_000 }, (_, i) => `SN${String(i).padStart(8, '0')}`);
    const expected = await reference(serials);
    const r = await ours([], serials.join('\n') + '\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected);

    const csv = join(dir, 'batch.csv');
    const c = await ours(['--format', 'csv', '--out', csv], serials.join('\n') + '\n');
    expect(c.code, c.stderr).toBe(0);
    const rows = (await readFile(csv, 'utf8')).split('\r\n').filter((l) => l !== '');
    expect(rows[0]).toBe('serial,psk');
    expect(rows.slice(1).map((row) => row.replace(',', ' ')).join('\n') + '\n').toBe(expected);
  }, 60_000);
});
