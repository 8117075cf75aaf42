/**
 * The development token that `coap-psk hsm init-dev` (and the dev start script) creates inside
 * the project folder: its own SoftHSM configuration, random PINs in 0600 files, and a master
 * key generated inside the token. Nothing secret is ever printed or put on a command line.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { generateAesKey, initToken } from './admin.js';
import { acquireModule, findSecretKey, findSlotByLabel, login, openSession, releaseModule, safely } from './p11.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const DEV_TOKEN_LABEL = 'coap-psk-dev';
export const DEV_KEY_LABEL = 'psk-master';

export const PROJECT_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface DevPaths {
  dir: string;
  confPath: string;
  tokenDir: string;
  pinFile: string;
  soPinFile: string;
}

export function devPaths(root = PROJECT_ROOT): DevPaths {
  const dir = join(root, '.dev');
  return {
    dir,
    confPath: join(dir, 'softhsm2.conf'),
    tokenDir: join(dir, 'tokens'),
    pinFile: join(dir, 'pin'),
    soPinFile: join(dir, 'so-pin'),
  };
}

export interface InitDevResult {
  created: boolean;
  confPath: string;
}

/**
 * Idempotent: when the token, its key and the PIN file exist, it changes nothing.
 * `softhsmConf` is the configuration SoftHSM will use; when it is the project's own, it is
 * written here. (A SOFTHSM2_CONF set by the user is honoured, as SoftHSM does.)
 */
export async function initDevToken(options: { root?: string; softhsmConf?: string; modulePath?: string } = {}): Promise<InitDevResult> {
  const paths = devPaths(options.root);
  const confPath = options.softhsmConf ?? paths.confPath;
  const modulePath = options.modulePath ?? SOFTHSM_MODULE;
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  if (confPath === paths.confPath) {
    await mkdir(paths.tokenDir, { recursive: true, mode: 0o700 });
    if (!existsSync(confPath)) {
      await writeFile(
        confPath,
        `# Development SoftHSM configuration written by coap-psk hsm init-dev\n` +
          `directories.tokendir = ${paths.tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
        { mode: 0o600 },
      );
    }
  }
  // SoftHSM reads it at C_Initialize, which happens in acquireModule below.
  process.env.SOFTHSM2_CONF = confPath;

  const p11 = acquireModule(modulePath);
  try {
    const existing = findSlotByLabel(p11, DEV_TOKEN_LABEL);
    if (existing) {
      if (!existsSync(paths.pinFile)) {
        throw new UserError(`development token ${DEV_TOKEN_LABEL} exists but ${paths.pinFile} is missing; remove ${paths.tokenDir} to start over`);
      }
      const session = openSession(p11, existing, true);
      try {
        login(p11, session, await readPinFile(paths.pinFile));
        if (!findSecretKey(p11, session, DEV_KEY_LABEL)) generateAesKey(p11, session, DEV_KEY_LABEL);
        else return { created: false, confPath };
      } finally {
        safely(() => p11.C_CloseSession(session));
      }
      return { created: true, confPath };
    }

    const pin = randomBytes(16).toString('hex');
    const soPin = randomBytes(16).toString('hex');
    // Written first, exclusively: a token whose PIN got lost would be useless.
    await writeFile(paths.pinFile, `${pin}\n`, { mode: 0o600, flag: 'w' });
    await writeFile(paths.soPinFile, `${soPin}\n`, { mode: 0o600, flag: 'w' });
    await chmod(paths.pinFile, 0o600);
    await chmod(paths.soPinFile, 0o600);
    const slot = initToken(p11, DEV_TOKEN_LABEL, soPin, pin);
    const session = openSession(p11, slot, true);
    try {
      login(p11, session, pin);
      generateAesKey(p11, session, DEV_KEY_LABEL);
    } finally {
      safely(() => p11.C_CloseSession(session));
    }
    return { created: true, confPath };
  } finally {
    releaseModule(modulePath);
  }
}

/** A PIN file holds the PIN on its first line; a trailing newline is not part of it. */
export async function readPinFile(path: string): Promise<Buffer> {
  const raw = await readFile(path);
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
  const pin = Buffer.from(raw.subarray(0, end));
  raw.fill(0);
  return pin;
}
