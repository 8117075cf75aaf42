/**
 * Lab only: makes the SoftHSM token of one pod and imports the lab's master key into it, so that
 * every pod of the StatefulSet holds the same key (a real deployment uses a network HSM instead,
 * see docs/cluster.md). Run by the lab StatefulSet's init container:
 *
 *   node --import tsx deploy/softhsm-lab/init-token.ts
 *
 * Settings are the server's own (SOFTHSM2_CONF, COAP_PSK_TOKEN_LABEL, COAP_PSK_PIN_FILE,
 * COAP_PSK_KEY_LABEL: the first label) plus COAP_PSK_LAB_MASTER_KEY_FILE, a file of 16 bytes or
 * of 32 hex digits. PIN and key are read from files, never from argv, and never printed. The
 * security officer PIN is random and forgotten: a lab token is made again, not administered.
 * A token that already has the label is left as it is (a restarted pod keeps its emptyDir).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importAesKey, initToken } from '../../src/keys/admin.js';
import { acquireModule, findSlotByLabel, login, openSession, releaseModule } from '../../src/keys/p11.js';

const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

function setting(name: string): string {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`init-token: ${name} is not set\n`);
    process.exit(1);
  }
  return value;
}

function readMasterKey(file: string): Buffer {
  const raw = readFileSync(file);
  const text = raw.toString('latin1').trim();
  return /^[0-9a-fA-F]{32}$/.test(text) ? Buffer.from(text, 'hex') : raw;
}

const modulePath = process.env.COAP_PSK_PKCS11_MODULE ?? SOFTHSM_MODULE;
const tokenLabel = setting('COAP_PSK_TOKEN_LABEL');
const keyLabel = setting('COAP_PSK_KEY_LABEL').split(',')[0].trim();
const pin = readFileSync(setting('COAP_PSK_PIN_FILE'), 'utf8').trim();
setting('SOFTHSM2_CONF');
const master = readMasterKey(setting('COAP_PSK_LAB_MASTER_KEY_FILE'));

const p11 = acquireModule(modulePath);
try {
  if (findSlotByLabel(p11, tokenLabel)) {
    process.stdout.write(`init-token: token ${tokenLabel} exists; left as it is\n`);
  } else {
    const slot = initToken(p11, tokenLabel, randomBytes(12).toString('hex'), pin);
    const session = openSession(p11, slot, true);
    login(p11, session, pin);
    importAesKey(p11, session, keyLabel, master);
    p11.C_CloseSession(session);
    process.stdout.write(`init-token: token ${tokenLabel} made with master key ${keyLabel}\n`);
  }
} catch (e) {
  process.stderr.write(`init-token: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
} finally {
  master.fill(0);
  releaseModule(modulePath);
}
