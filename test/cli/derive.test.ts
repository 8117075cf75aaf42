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

function run(args: string[], opts: { stdin?: string | Buffer; env?: Record<string, string | undefined> } = {}): Promise<Run> {
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

  it('reports blank and over-long lines with their line numbers, skips them, sums up, exits 2', async () => {
    const r = await run(['derive'], { stdin: `SN12345\n\n${'x'.repeat(129)}\n   \nSN134535\n` });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/coap-psk: 2 keys derived, 3 skipped, 0 warnings\n$/);
    expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\nSN134535 ${VECTORS[1]!.psk}\n`);
    expect(r.stderr).toContain('line 2: blank serial, skipped');
    expect(r.stderr).toContain('line 3: serial longer than 128 bytes, skipped');
    expect(r.stderr).toContain('line 4: blank serial, skipped');
  });

  it('--allow-skipped exits 0 after skipping, with the summary line', async () => {
    const r = await run(['derive', '--allow-skipped'], { stdin: 'SN12345\n\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\n`);
    expect(r.stderr).toBe('coap-psk: line 2: blank serial, skipped\ncoap-psk: 1 key derived, 1 skipped, 0 warnings\n');
  });

  it('refuses invalid UTF-8 (overlong forms too) and control characters, which could not be printed back', async () => {
    const lines = [
      Buffer.from('SN12345'),
      Buffer.from([0x53, 0x4e, 0xff, 0xfe, 0x42]), // SN\xff\xfeB
      Buffer.from([0x53, 0x4e, 0xfe, 0xff, 0x42]), // SN\xfe\xffB
      Buffer.from([0x53, 0x4e, 0xc0, 0xaf, 0x42]), // SN\xc0\xafB: an overlong "/"
      Buffer.from('SN\u0000B'),
      Buffer.from('SN\u001b[31mB'),
      Buffer.from('SN\tB'),
      Buffer.from('SN\u0085B'), // C1 NEL
      Buffer.from('SN134535'),
    ];
    const r = await run(['derive'], { stdin: Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])) });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\nSN134535 ${VECTORS[1]!.psk}\n`);
    expect(r.stderr).toContain('line 2: serial is not valid UTF-8, skipped');
    expect(r.stderr).toContain('line 3: serial is not valid UTF-8, skipped');
    expect(r.stderr).toContain('line 4: serial is not valid UTF-8, skipped');
    expect(r.stderr).toContain('line 5: serial holds control character U+0000, skipped');
    expect(r.stderr).toContain('line 6: serial holds control character U+001B, skipped');
    expect(r.stderr).toContain('line 7: serial holds control character U+0009, skipped');
    expect(r.stderr).toContain('line 8: serial holds control character U+0085, skipped');
    expect(r.stderr).toMatch(/2 keys derived, 7 skipped, 0 warnings\n$/);
    // An argument with a line break is refused too: it would print one record on two lines.
    const arg = await run(['derive', 'SN\n1']);
    expect(arg.code).toBe(2);
    expect(arg.stdout).toBe('');
    expect(arg.stderr).toContain('argument 1: serial holds control character U+000A, skipped');
  });

  it('warns about leading or trailing white space and non-NFC text, and derives them as given', async () => {
    const nfd = 'Gera\u0308t';
    const r = await run(['derive', 'SN2 ', nfd]);
    expect(r.code).toBe(0);
    // "SN2 " keeps its space: its key is not SN2's (openssl, see test/keys/vectors.ts for the recipe).
    expect(r.stdout.split('\n')[0]).toBe('SN2  fd9866889ef2764a354f4aaea4ee8e41');
    expect(r.stderr).toContain('argument 1: warning: leading or trailing white space is part of the serial ("SN2 ")');
    expect(r.stderr).toContain('argument 2: warning: not in Unicode NFC');
    expect(r.stderr).toMatch(/coap-psk: 2 keys derived, 0 skipped, 2 warnings\n$/);
  });

  it('--key-only prints the key alone, for a serial with a space too', async () => {
    const r = await run(['derive', '--key-only', 'SN 1']);
    expect(r).toEqual({ code: 0, stdout: 'e907b1403b46a0485364515ace7c9c92\n', stderr: '' });
    expectOneLineError(await run(['derive', '--key-only', 'SN1', 'SN2']), /--key-only takes exactly one serial argument/);
    expectOneLineError(await run(['derive', '--key-only'], { stdin: 'SN1\n' }), /--key-only takes exactly one serial argument/);
    expectOneLineError(await run(['derive', '--key-only', '--format', 'csv', 'SN1']), /--key-only prints the key alone/);
  });

  it('--format csv and jsonl keep serials with spaces, quotes and commas unambiguous', async () => {
    const csv = await run(['derive', '--format', 'csv', 'SN 1', 'a"b,c']);
    expect(csv.stdout.split('\r\n').slice(0, 3)).toEqual(['serial,psk', 'SN 1,e907b1403b46a0485364515ace7c9c92', expect.stringMatching(/^"a""b,c",[0-9a-f]{32}$/)]);
    const jsonl = await run(['derive', '--format', 'jsonl', 'SN 1', 'a"b,c']);
    const rows = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l) as { serial: string; psk: string });
    expect(rows[0]).toEqual({ serial: 'SN 1', psk: 'e907b1403b46a0485364515ace7c9c92' });
    expect(rows[1]!.serial).toBe('a"b,c');
  });

  it('--out DIR where DIR is a directory: one clear line', async () => {
    expectOneLineError(await run(['derive', '--out', work, 'SN1']), new RegExp(`^coap-psk: --out ${work} is a directory; give a file name, e.g. --out ${work}/keys.csv\n$`));
  });

  it('takes the key settings serve takes: --key-label, --config (keys section), other key flags', async () => {
    // The old key, chosen by flag over the environment (vector: openssl with OLD_MASTER_HEX).
    const byFlag = await run(['derive', '--key-label', 'old', 'SN12345']);
    expect(byFlag.stdout).toBe('SN12345 15d4bec1f42c8c6936a1f0f1c76193d2\n');
    const file = join(work, 'keys.yaml');
    await writeFile(file, 'keys:\n  keyLabels: [old]\nlistener: { port: 5684 }\n');
    const byFile = await run(['derive', '--config', file, 'SN12345'], { env: { COAP_PSK_KEY_LABEL: undefined } });
    expect(byFile.stdout).toBe('SN12345 15d4bec1f42c8c6936a1f0f1c76193d2\n');
    expectOneLineError(await run(['derive', '--token-label', 'nope', 'SN1']), /PKCS#11 token not found: label nope/);
    // A bad setting of another section in the environment is serve's business, not derive's.
    const other = await run(['derive', 'SN12345'], { env: { COAP_PSK_DTLS_MTU: 'tiny' } });
    expect(other.code).toBe(0);
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
    expectOneLineError(await run(['derive', 'SN1'], { env: { COAP_PSK_KEY_ENCODING: 'base64' } }), /keys.encoding \(COAP_PSK_KEY_ENCODING\): must be raw or hex/);
    expectOneLineError(await run(['derive', 'SN1'], { env: { COAP_PSK_PIN: undefined } }), /keys.pinFile \(COAP_PSK_PIN_FILE\) \(or keys.pin \(COAP_PSK_PIN\)\) is not set/);
    expectOneLineError(
      await run(['derive', 'SN1'], { env: { COAP_PSK_PIN: undefined, COAP_PSK_PIN_FILE: '/no/pin' } }),
      /^coap-psk: COAP_PSK_PIN_FILE cannot be read: \/no\/pin \(ENOENT\)\n$/,
    );
  });
});
