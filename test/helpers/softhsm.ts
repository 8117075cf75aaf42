/**
 * A throw-away SoftHSM token for tests.
 *
 *   const token = await createTestToken({ label: 'it', pin: '1234', keys: [{ label: 'k1', hex: '00…ff' }] });
 *   process.env.SOFTHSM2_CONF = token.confPath;        // before this process first loads SoftHSM
 *   // or spawn a server with { env: { ...process.env, ...token.env } }
 *   ...
 *   await token.cleanup();
 *
 * Each call makes its own directory with its own softhsm2.conf and token store, so tests do
 * not share state. The token is created in a child process (SoftHSM reads SOFTHSM2_CONF only
 * at C_Initialize, and this keeps the test process free to use whichever token it wants);
 * the PINs and keys reach that child on stdin, never on its command line.
 *
 * One process sees one SOFTHSM2_CONF at a time: SoftHSM re-reads it only after every user of
 * the module in that process has closed (C_Finalize). `env` carries everything a child needs:
 * SOFTHSM2_CONF and the COAP_PSK_* settings for this token (module, token label, PIN, key labels).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface TestTokenOptions {
  label: string;
  pin: string;
  /** Keys imported with the production template (sensitive, non-extractable, encrypt-only). */
  keys?: { label: string; hex: string }[];
  /** Defaults to a fixed test value; only needed by tests of SO operations. */
  soPin?: string;
}

export interface TestToken {
  dir: string;
  confPath: string;
  modulePath: string;
  /** SOFTHSM2_CONF plus COAP_PSK_PKCS11_MODULE, _TOKEN_LABEL, _PIN and _KEY_LABEL for this token. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

const projectRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

// Runs in the child: reads {label, pin, soPin, keys} from stdin, creates the token, imports keys.
const childScript = `
import { readFileSync } from 'node:fs';
const { acquireModule, releaseModule, openSession, login } = await import(${JSON.stringify(join(projectRoot, 'src/keys/p11.ts'))});
const { initToken, importAesKey } = await import(${JSON.stringify(join(projectRoot, 'src/keys/admin.ts'))});
const req = JSON.parse(readFileSync(0, 'utf8'));
const p11 = acquireModule(req.modulePath);
try {
  const slot = initToken(p11, req.label, req.soPin, req.pin);
  const session = openSession(p11, slot, true);
  login(p11, session, req.pin);
  for (const k of req.keys) importAesKey(p11, session, k.label, Buffer.from(k.hex, 'hex'));
  p11.C_CloseSession(session);
} finally {
  releaseModule(req.modulePath);
}
`;

export async function createTestToken(options: TestTokenOptions): Promise<TestToken> {
  const dir = await mkdtemp(join(tmpdir(), 'coap-psk-token-'));
  const tokenDir = join(dir, 'tokens');
  await mkdir(tokenDir);
  const confPath = join(dir, 'softhsm2.conf');
  await writeFile(confPath, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const keys = options.keys ?? [];
  const request = JSON.stringify({
    modulePath: SOFTHSM_MODULE, label: options.label, pin: options.pin, soPin: options.soPin ?? 'test-so-pin', keys,
  });

  await new Promise<void>((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childScript], {
      cwd: projectRoot,
      env: { ...process.env, SOFTHSM2_CONF: confPath },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`createTestToken failed (exit ${code}): ${stderr.trim()}`))));
    child.stdin.end(request);
  });

  return {
    dir,
    confPath,
    modulePath: SOFTHSM_MODULE,
    env: {
      SOFTHSM2_CONF: confPath,
      COAP_PSK_PKCS11_MODULE: SOFTHSM_MODULE,
      COAP_PSK_TOKEN_LABEL: options.label,
      COAP_PSK_PIN: options.pin,
      COAP_PSK_KEY_LABEL: keys.map((k) => k.label).join(','),
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
