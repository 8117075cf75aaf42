/**
 * `coap-psk derive` as an operator runs it: the real binary, a real SoftHSM token.
 */
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestToken, createTestToken } from '../helpers/softhsm.js';
import { type Run, runCli } from './run.js';
import { MASTER_HEX, OLD_MASTER_HEX, VECTORS } from '../keys/vectors.js';

let token: TestToken;
let work: string;

beforeAll(async () => {
  token = await createTestToken({
    label: 'cli-test',
    pin: '97531',
    keys: [
      { label: 'new', hex: MASTER_HEX },
      { label: 'old', hex: OLD_MASTER_HEX },
    ],
  });
  work = await mkdtemp(join(tmpdir(), 'coap-psk-cli-'));
});
afterAll(async () => {
  await token?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

function run(args: string[], opts: { stdin?: string; env?: Record<string, string | undefined> } = {}): Promise<Run> {
  return runCli(args, { ...token.env, ...opts.env }, opts.stdin);
}

const expectOneLineError = (r: Run, message: RegExp): void => {
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
};

describe('coap-psk derive', () => {
  it('prints SERIAL<space>hex for serials given as arguments, the Go program\'s line format', async () => {
    const r = await run(['derive', 'SN12345', 'SN134535']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\nSN134535 ${VECTORS[1]!.psk}\n`);
  });

  it('prints hex even when COAP_PSK_KEY_ENCODING=hex or raw, under the newest key', async () => {
    for (const enc of ['hex', 'raw']) {
      const r = await run(['derive', 'SN12345'], { env: { COAP_PSK_KEY_ENCODING: enc } });
      expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\n`);
    }
  });

  it('reads stdin one serial per line (CRLF too), non-ASCII and 128-byte serials included', async () => {
    const serials = VECTORS.filter((v) => v.serial !== '');
    const r = await run(['derive'], { stdin: serials.map((v) => v.serial).join('\r\n') });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(serials.map((v) => `${v.serial} ${v.psk}\n`).join(''));
  });

  it('reports blank and over-long lines with their line numbers and skips them', async () => {
    const r = await run(['derive'], { stdin: `SN12345\n\n${'x'.repeat(129)}\n   \nSN134535\n` });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\nSN134535 ${VECTORS[1]!.psk}\n`);
    expect(r.stderr).toContain('line 2: blank serial, skipped');
    expect(r.stderr).toContain('line 3: serial longer than 128 bytes, skipped');
    expect(r.stderr).toContain('line 4: blank serial, skipped');
  });

  it('--strict fails the run on the first bad serial', async () => {
    const r = await run(['derive', '--strict'], { stdin: `SN12345\n\nSN134535\n` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('coap-psk: line 2: blank serial\n');
  });

  it('--format csv: header, RFC 4180 quoting of commas and quotes', async () => {
    const r = await run(['derive', '--format', 'csv'], { stdin: 'SN12345\nA,B\nsay "hi"\n' });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\r\n');
    expect(lines[0]).toBe('serial,psk');
    expect(lines[1]).toBe(`SN12345,${VECTORS[0]!.psk}`);
    expect(lines[2]).toMatch(/^"A,B",[0-9a-f]{32}$/);
    expect(lines[3]).toMatch(/^"say ""hi""",[0-9a-f]{32}$/);
    expect(lines[4]).toBe('');
  });

  it('--format jsonl', async () => {
    const r = await run(['derive', '--format', 'jsonl', 'SN12345', 'Gerät-ÄÖÜ-€-日本']);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { serial: 'SN12345', psk: VECTORS[0]!.psk },
      { serial: 'Gerät-ÄÖÜ-€-日本', psk: VECTORS[3]!.psk },
    ]);
  });

  it('--out writes the whole file atomically, mode 0600, and leaves nothing behind on failure', async () => {
    const out = join(work, 'keys.csv');
    const ok = await run(['derive', '--format', 'csv', '--out', out], { stdin: 'SN12345\nSN134535\n' });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('');
    expect(await readFile(out, 'utf8')).toBe(`serial,psk\r\nSN12345,${VECTORS[0]!.psk}\r\nSN134535,${VECTORS[1]!.psk}\r\n`);
    expect((await stat(out)).mode & 0o777).toBe(0o600);

    // A failing run must not replace the previous file nor leave a temp file.
    const bad = await run(['derive', '--strict', '--out', out], { stdin: 'SN1\n\n' });
    expect(bad.code).toBe(1);
    expect(await readFile(out, 'utf8')).toContain('SN134535');
    expect((await readdir(work)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('streams a large stdin with bounded memory', async () => {
    const n = 50_000;
    const input = Array.from({ length: n }, (_, i) => `SN${i}`).join('\n');
    const file = join(work, 'big.txt');
    await writeFile(file, input);
    const out = join(work, 'big.out');
    const r = await run(['derive', '--out', out], { stdin: input });
    expect(r.code).toBe(0);
    const lines = (await readFile(out, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(n);
    expect(lines[12345]).toMatch(/^SN12345 [0-9a-f]{32}$/);
    expect(lines[12345]).toBe(`SN12345 ${VECTORS[0]!.psk}`);
  });

  it('development mode via COAP_PSK_MASTER_KEY_HEX gives the same answers and warns', async () => {
    const r = await run(['derive', 'SN12345'], {
      env: {
        COAP_PSK_PKCS11_MODULE: undefined, COAP_PSK_TOKEN_LABEL: undefined, COAP_PSK_PIN: undefined,
        COAP_PSK_KEY_LABEL: undefined, COAP_PSK_MASTER_KEY_HEX: MASTER_HEX,
      },
    });
    expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\n`);
    expect(r.stderr).toMatch(/WARNING: software key mode/);
  });
});

describe('coap-psk errors: one line, non-zero exit, no stack trace, no secret', () => {
  it('wrong PIN', async () => {
    const r = await run(['derive', 'SN1'], { env: { COAP_PSK_PIN: 'not-the-pin' } });
    expectOneLineError(r, /^coap-psk: PKCS#11 login failed: PIN incorrect\n$/);
    expect(r.stderr).not.toContain('not-the-pin');
  });
  it('missing key label', async () => {
    expectOneLineError(await run(['derive', 'SN1'], { env: { COAP_PSK_KEY_LABEL: 'new,gone' } }), /^coap-psk: PKCS#11 key not found: label gone\n$/);
  });
  it('missing module', async () => {
    expectOneLineError(
      await run(['derive', 'SN1'], { env: { COAP_PSK_PKCS11_MODULE: '/no/such/module.so' } }),
      /^coap-psk: PKCS#11 module could not be loaded: \/no\/such\/module.so\n$/,
    );
  });
  it('missing token', async () => {
    expectOneLineError(await run(['derive', 'SN1'], { env: { COAP_PSK_TOKEN_LABEL: 'nope' } }), /^coap-psk: PKCS#11 token not found: label nope\n$/);
  });
  it('bad settings name the setting', async () => {
    expectOneLineError(await run(['derive', 'SN1'], { env: { COAP_PSK_KEY_ENCODING: 'base64' } }), /COAP_PSK_KEY_ENCODING must be raw or hex/);
    expectOneLineError(await run(['derive', 'SN1'], { env: { COAP_PSK_PIN: undefined } }), /COAP_PSK_PIN_FILE \(or COAP_PSK_PIN\) is not set/);
    expectOneLineError(
      await run(['derive', 'SN1'], { env: { COAP_PSK_PIN: undefined, COAP_PSK_PIN_FILE: '/no/pin' } }),
      /^coap-psk: COAP_PSK_PIN_FILE cannot be read: \/no\/pin \(ENOENT\)\n$/,
    );
  });
});
