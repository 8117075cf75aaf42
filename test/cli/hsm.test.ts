/**
 * `coap-psk hsm ...` through the real binary on a real SoftHSM token, and `hsm init-dev`
 * in-process on a temporary project root (so the project's own .dev/ is left alone).
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDerive } from '../../src/cli/derive.js';
import { hsmInitDev } from '../../src/cli/hsm.js';
import { loadKeyConfig, openKeySource } from '../../src/config/keys.js';
import { P11, acquireModule, login, openSession, releaseModule, requireSlot } from '../../src/keys/p11.js';
import { type TestToken, createTestToken } from '../helpers/softhsm.js';
import { runCli } from './run.js';
import { MASTER_HEX, MASTER_KCV, OLD_MASTER_HEX, VECTORS } from '../keys/vectors.js';

const PIN = '8642';
let token: TestToken;
let work: string;

beforeAll(async () => {
  token = await createTestToken({ label: 'hsm-test', pin: PIN, keys: [{ label: 'k2025', hex: MASTER_HEX }] });
  work = await mkdtemp(join(tmpdir(), 'coap-psk-hsm-'));
});
afterAll(async () => {
  await token?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

function run(args: string[], opts: { stdin?: string | Buffer; env?: Record<string, string> } = {}) {
  return runCli(args, { ...token.env, ...opts.env }, opts.stdin);
}

describe('coap-psk hsm', () => {
  it('kcv prints the key check value that OpenSSL computes for the same key', async () => {
    const r = await run(['hsm', 'kcv', '--label', 'k2025']);
    expect(r).toEqual({ code: 0, stdout: `${MASTER_KCV}\n`, stderr: '' });
  });

  it('kcv without --label checks the configured master key: COAP_PSK_KEY_LABEL, --key-label or --config', async () => {
    expect(await run(['hsm', 'kcv'])).toEqual({ code: 0, stdout: `${MASTER_KCV}\n`, stderr: '' });
    const byFlag = await run(['hsm', 'kcv', '--key-label', 'gone']);
    expect(byFlag.stderr).toBe('coap-psk: PKCS#11 key not found: label gone\n');
    const file = join(work, 'kcv.yaml');
    await writeFile(file, 'keys:\n  keyLabels: [k2025]\n');
    expect((await run(['hsm', 'kcv', '--config', file], { env: { COAP_PSK_KEY_LABEL: '' } })).stdout).toBe(`${MASTER_KCV}\n`);
  });

  it('import-key reads hex from stdin, prints the KCV and never the key', async () => {
    const r = await run(['hsm', 'import-key', '--label', 'k2024'], { stdin: `${OLD_MASTER_HEX}\n` });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^imported k2024 into token hsm-test: KCV [0-9a-f]{6}\n$/);
    expect(r.stdout + r.stderr).not.toContain(OLD_MASTER_HEX);
    // A duplicate label is refused.
    const again = await run(['hsm', 'import-key', '--label', 'k2024'], { stdin: OLD_MASTER_HEX });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('coap-psk: PKCS#11 key already exists: label k2024\n');
  });

  it('import-key reads 16 raw bytes from --file, and refuses malformed input without echoing it', async () => {
    const file = join(work, 'master.bin');
    await writeFile(file, Buffer.from(MASTER_HEX, 'hex'), { mode: 0o600 });
    const ok = await run(['hsm', 'import-key', '--label', 'k-raw', '--file', file]);
    expect(ok.stdout).toBe(`imported k-raw into token hsm-test: KCV ${MASTER_KCV}\n`);
    const bad = await run(['hsm', 'import-key', '--label', 'k-bad'], { stdin: 'not-a-key-0123456789' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('coap-psk: master key input must be 16 raw bytes or 32 hex digits\n');
  });

  it('generate-key creates a key with the production attributes; check reports them and passes', async () => {
    const g = await run(['hsm', 'generate-key', '--label', 'k-gen']);
    expect(g.stdout).toMatch(/^generated k-gen in token hsm-test: KCV [0-9a-f]{6}\n$/);
    const c = await run(['hsm', 'check'], { env: { COAP_PSK_KEY_LABEL: 'k-gen,k2025' } });
    expect(c.code).toBe(0);
    expect(c.stdout).toContain('token: hsm-test');
    expect(c.stdout).toMatch(/key k-gen: AES-128, token, private, sensitive, not extractable, encrypt, not decrypt; KCV [0-9a-f]{6}/);
    expect(c.stdout).toContain(`key k2025: AES-128, token, private, sensitive, not extractable, encrypt, not decrypt; KCV ${MASTER_KCV}`);
    expect(c.stdout).toContain('self-test: derivation under k-gen OK');
    expect(c.stdout).toContain('all checks passed');
  });

  it('check warns about an extractable, non-sensitive key', async () => {
    // Made here, not with the helper: the helper only makes keys the right way.
    process.env.SOFTHSM2_CONF = token.confPath;
    const p11 = acquireModule(token.modulePath);
    try {
      const s = openSession(p11, requireSlot(p11, 'hsm-test'), true);
      login(p11, s, PIN);
      p11.C_CreateObject(s, [
        { type: P11.CKA_CLASS, value: P11.CKO_SECRET_KEY }, { type: P11.CKA_KEY_TYPE, value: P11.CKK_AES },
        { type: P11.CKA_LABEL, value: 'weak' }, { type: P11.CKA_TOKEN, value: true }, { type: P11.CKA_PRIVATE, value: true },
        { type: P11.CKA_SENSITIVE, value: false }, { type: P11.CKA_EXTRACTABLE, value: true },
        { type: P11.CKA_ENCRYPT, value: true }, { type: P11.CKA_VALUE, value: Buffer.from(MASTER_HEX, 'hex') },
      ]);
      p11.C_CloseSession(s);
    } finally {
      releaseModule(token.modulePath);
    }
    const c = await run(['hsm', 'check'], { env: { COAP_PSK_KEY_LABEL: 'weak' } });
    expect(c.stdout).toContain('WARNING: key weak is extractable');
    expect(c.stdout).toContain('WARNING: key weak is not sensitive');
    expect(c.stdout).toContain('WARNING: key weak can decrypt');
    expect(c.stdout).toContain('3 warning(s)');
  });

  it('refuses to derive under the extractable key unless it is explicitly allowed', async () => {
    // Depends on the 'weak' key made by the test above.
    const refused = await run(['derive', 'SN1'], { env: { COAP_PSK_KEY_LABEL: 'weak' } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('coap-psk: PKCS#11 key weak is extractable: refusing it (import it again with `coap-psk hsm import-key`, or allow it with --allow-extractable-key)\n');
    const allowed = await run(['derive', 'SN12345'], { env: { COAP_PSK_KEY_LABEL: 'weak', COAP_PSK_ALLOW_EXTRACTABLE_KEY: 'true' } });
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toBe('SN12345 612b3b3f59f516b24a2c831168f701ea\n');
    expect(allowed.stderr).toContain('warning: PKCS#11 key weak is extractable');
  });

  it('never takes a PIN flag', async () => {
    const r = await run(['hsm', 'kcv', '--label', 'k2025', '--pin', PIN]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown option '--pin'/);
  });
});

describe('hsm init-dev (temporary project root)', () => {
  it('creates the dev token once, PIN files 0600, and derive works on it with nothing configured', async () => {
    const root = await mkdtemp(join(tmpdir(), 'coap-psk-root-'));
    try {
      const env = {}; // nothing configured: the embedded development default
      // Before init-dev: one line telling what to run.
      await expect(openKeySource(loadKeyConfig(env, { projectRoot: root }))).rejects.toThrow(
        /^development token not found: run `npx coap-psk hsm init-dev`/,
      );
      const said: string[] = [];
      await hsmInitDev(env, (l) => said.push(l), root);
      await hsmInitDev(env, (l) => said.push(l), root);
      expect(said[0]).toMatch(/^created development token coap-psk-dev with master key psk-master/);
      expect(said[1]).toMatch(/^development token coap-psk-dev already exists/);
      for (const f of ['pin', 'so-pin']) expect((await stat(join(root, '.dev', f))).mode & 0o777).toBe(0o600);

      const out = new PassThrough();
      let text = '';
      out.on('data', (d: Buffer) => (text += d.toString()));
      const summary = await runDerive({ serials: ['SN12345', 'SN134535'], stdout: out, keyConfig: loadKeyConfig(env, { projectRoot: root }) });
      expect(summary.derived).toBe(2);
      // A random master key: the format holds, the known answer (other key) does not.
      expect(text).toMatch(/^SN12345 [0-9a-f]{32}\nSN134535 [0-9a-f]{32}\n$/);
      expect(text).not.toContain(VECTORS[0]!.psk);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
