/**
 * The lab's SoftHSM token (deploy/softhsm-lab/init-token.ts, the lab StatefulSet's init
 * container): made in an empty token directory from the PIN file and the master key file, it
 * gives `coap-psk derive` the keys of that master key, and a second run (a restarted pod) leaves
 * it as it is. The expected key is computed here with node:crypto, apart from the project's code.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN } from '../helpers/server-process.js';
import { SOFTHSM_MODULE } from '../helpers/softhsm.js';

const execFileP = promisify(execFile);
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const run = (cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv }) => execFileP(cmd, args, { ...opts, cwd: ROOT });
const MASTER_HEX = '2b7e151628aed2a6abf7158809cf4f3c'; // FIPS 197's example key; a test key only
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-lab-token-'));
  await mkdir(join(dir, 'tokens'));
  await writeFile(join(dir, 'softhsm2.conf'), `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  await writeFile(join(dir, 'pin'), 'lab-pin-1234\n', { mode: 0o400 });
  await writeFile(join(dir, 'master.key'), `${MASTER_HEX}\n`, { mode: 0o400 });
  env = {
    ...process.env,
    SOFTHSM2_CONF: join(dir, 'softhsm2.conf'),
    COAP_PSK_PKCS11_MODULE: SOFTHSM_MODULE,
    COAP_PSK_TOKEN_LABEL: 'coap-psk-lab',
    COAP_PSK_PIN_FILE: join(dir, 'pin'),
    COAP_PSK_KEY_LABEL: 'psk-master-lab',
    COAP_PSK_LAB_MASTER_KEY_FILE: join(dir, 'master.key'),
  };
});

afterAll(() => rm(dir, { recursive: true, force: true }));

function expectedPsk(serial: string): string {
  const block = createHash('md5').update(serial, 'utf8').digest();
  const aes = createCipheriv('aes-128-ecb', Buffer.from(MASTER_HEX, 'hex'), null).setAutoPadding(false);
  return Buffer.concat([aes.update(block), aes.final()]).toString('hex');
}

it('makes the token with the master key from its file, once', async () => {
  const first = await run(process.execPath, ['--import', 'tsx', 'deploy/softhsm-lab/init-token.ts'], { env });
  expect(first.stdout).toContain('token coap-psk-lab made with master key psk-master-lab');
  expect(first.stdout + first.stderr).not.toContain(MASTER_HEX);
  const derived = await run(process.execPath, [BIN, 'derive', 'SN-lab-1', 'SN-lab-2'], { env });
  expect(derived.stdout).toBe(`SN-lab-1 ${expectedPsk('SN-lab-1')}\nSN-lab-2 ${expectedPsk('SN-lab-2')}\n`);
  const again = await run(process.execPath, ['--import', 'tsx', 'deploy/softhsm-lab/init-token.ts'], { env });
  expect(again.stdout).toContain('exists; left as it is');
}, 30_000);

it('fails with one line naming what is missing', async () => {
  const { COAP_PSK_LAB_MASTER_KEY_FILE: _, ...without } = env;
  const res = await run(process.execPath, ['--import', 'tsx', 'deploy/softhsm-lab/init-token.ts'], { env: without }).catch((e: { code: number; stderr: string }) => e);
  expect(res).toMatchObject({ code: 1, stderr: 'init-token: COAP_PSK_LAB_MASTER_KEY_FILE is not set\n' });
});
