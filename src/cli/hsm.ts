/**
 * `coap-psk hsm ...`: administration of the master keys on any PKCS#11 token. PINs come from
 * the key configuration (file or environment), master keys from stdin or a file; neither is
 * ever printed. What is printed (KCVs, attributes) is safe to share.
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { type KeyConfig, type Pkcs11KeyConfig, loadKeyConfig, openKeySource } from '../config/keys.js';
import { generateAesKey, importAesKey, kcv, keyAttributes } from '../keys/admin.js';
import { md5Block } from '../keys/derive.js';
import { initDevToken, readPinFile } from '../keys/devtoken.js';
import {
  P11, type Handle, type PKCS11, acquireModule, findSecretKey, login, openSession, releaseModule, requireSlot, safely,
} from '../keys/p11.js';
import { Pkcs11Resolver } from '../keys/pkcs11.js';

type Print = (line: string) => void;
const stdoutLine: Print = (l) => process.stdout.write(`${l}\n`);

/** The key configuration the command line resolved (flags, --config), else the environment's. */
interface KeysGiven {
  keys?: KeyConfig;
}

function pkcs11Config(env: Record<string, string | undefined>, given?: KeyConfig): Pkcs11KeyConfig {
  const config: KeyConfig = given ?? loadKeyConfig(env);
  if (config.mode !== 'pkcs11') throw new UserError('hsm commands need a PKCS#11 token; unset COAP_PSK_MASTER_KEY_HEX');
  return config;
}

/** Opens a logged-in session on the configured token for the duration of `fn`. */
async function withSession<T>(config: Pkcs11KeyConfig, readWrite: boolean, fn: (p11: PKCS11, s: Handle) => T): Promise<T> {
  if (config.softhsmConf !== undefined) process.env.SOFTHSM2_CONF = config.softhsmConf;
  let pin: Buffer;
  try {
    pin = config.pin ? Buffer.from(config.pin) : await readPinFile(config.pinFile!);
  } catch {
    throw new UserError(config.devDefault
      ? 'development token not found: run `npx coap-psk hsm init-dev` in the clone'
      : `${config.pinFileSetting ?? 'COAP_PSK_PIN_FILE'} cannot be read: ${config.pinFile}`);
  }
  const p11 = acquireModule(config.modulePath);
  let session: Handle | undefined;
  try {
    session = openSession(p11, requireSlot(p11, config.tokenLabel), readWrite);
    login(p11, session, pin);
    return fn(p11, session);
  } finally {
    pin.fill(0);
    if (session) safely(() => p11.C_CloseSession(session!));
    releaseModule(config.modulePath);
  }
}

export async function hsmInitDev(env = process.env, print: Print = stdoutLine, projectRoot?: string): Promise<void> {
  const config = loadKeyConfig(env, { projectRoot });
  if (config.mode !== 'pkcs11') throw new UserError('hsm init-dev makes a SoftHSM token; unset COAP_PSK_MASTER_KEY_HEX');
  if (!config.devDefault) throw new UserError('hsm init-dev makes the development token; unset COAP_PSK_PKCS11_MODULE, COAP_PSK_TOKEN_LABEL and COAP_PSK_PIN(_FILE)');
  const { created, confPath } = await initDevToken({ root: projectRoot, softhsmConf: config.softhsmConf, modulePath: config.modulePath });
  print(created
    ? `created development token ${config.tokenLabel} with master key ${config.keyLabels[0]} (SOFTHSM2_CONF ${confPath}, PIN in ${config.pinFile})`
    : `development token ${config.tokenLabel} already exists (SOFTHSM2_CONF ${confPath})`);
}

/** 16 raw bytes, or 32 hex digits with optional surrounding whitespace. */
export function parseMasterKey(input: Buffer): Buffer {
  if (input.length === 16) return Buffer.from(input);
  const text = input.toString('latin1').trim();
  if (/^[0-9a-fA-F]{32}$/.test(text)) return Buffer.from(text, 'hex');
  throw new UserError('master key input must be 16 raw bytes or 32 hex digits');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  const all = Buffer.concat(chunks);
  chunks.forEach((c) => c.fill(0));
  return all;
}

export async function hsmImportKey(
  opts: { label: string; file?: string } & KeysGiven,
  env = process.env, stdin: Readable & { isTTY?: boolean } = process.stdin, print: Print = stdoutLine,
): Promise<void> {
  const config = pkcs11Config(env, opts.keys);
  let input: Buffer;
  if (opts.file) {
    input = await readFile(opts.file).catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`--file cannot be read: ${opts.file} (${e.code ?? 'error'})`);
    });
  } else {
    // Typing a master key into a terminal leaves it on screen and in scrollback.
    if (stdin.isTTY) throw new UserError('hsm import-key reads the key from a pipe or --file, not from a terminal');
    input = await readAll(stdin);
  }
  const key = parseMasterKey(input);
  input.fill(0);
  try {
    const check = await withSession(config, true, (p11, s) => kcv(p11, s, importAesKey(p11, s, opts.label, key)));
    print(`imported ${opts.label} into token ${config.tokenLabel}: KCV ${check}`);
  } finally {
    key.fill(0);
  }
}

export async function hsmGenerateKey(opts: { label: string } & KeysGiven, env = process.env, print: Print = stdoutLine): Promise<void> {
  const config = pkcs11Config(env, opts.keys);
  const check = await withSession(config, true, (p11, s) => kcv(p11, s, generateAesKey(p11, s, opts.label)));
  print(`generated ${opts.label} in token ${config.tokenLabel}: KCV ${check}`);
}

/** The KCV of opts.label, or of the newest configured master key (what serve and derive use). */
export async function hsmKcv(opts: { label?: string } & KeysGiven, env = process.env, print: Print = stdoutLine): Promise<void> {
  const config = pkcs11Config(env, opts.keys);
  const label = opts.label ?? config.keyLabels[0]!;
  print(await withSession(config, false, (p11, s) => {
    const key = findSecretKey(p11, s, label);
    if (!key) throw new UserError(`PKCS#11 key not found: label ${label}`);
    return kcv(p11, s, key);
  }));
}

/** Token facts, key attributes (with warnings), and a derivation through both code paths. */
export async function hsmCheck(opts: KeysGiven = {}, env = process.env, print: Print = stdoutLine): Promise<{ warnings: number }> {
  const config = pkcs11Config(env, opts.keys);
  let warnings = 0;
  const warn = (l: string): void => {
    warnings++;
    print(`  WARNING: ${l}`);
  };
  await withSession(config, false, (p11, s) => {
    const slot = p11.C_GetSessionInfo(s).slotID;
    const t = p11.C_GetTokenInfo(slot);
    const trim = (x: string): string => x.replace(/[\s\0]+$/, '');
    print(`module: ${config.modulePath}`);
    print(`token: ${trim(t.label)} (${trim(t.manufacturerID)} ${trim(t.model)}, serial ${trim(t.serialNumber)})`);
    try {
      const m = p11.C_GetMechanismInfo(slot, P11.CKM_AES_CBC);
      if ((m.flags & P11.CKF_ENCRYPT) === 0) warn('token does not offer CKM_AES_CBC for encryption');
    } catch {
      warn('token does not offer CKM_AES_CBC');
    }
    for (const label of config.keyLabels) {
      const key = findSecretKey(p11, s, label);
      if (!key) {
        print(`key ${label}: NOT FOUND`);
        warnings++;
        continue;
      }
      const a = keyAttributes(p11, s, key);
      const yes = (b: boolean, name: string): string => (b ? name : `not ${name}`);
      const kind = a.keyType === P11.CKK_AES ? `AES-${a.valueLen * 8}` : `key type ${a.keyType}`;
      print(`key ${label}: ${kind}, ${[yes(a.token, 'token'), yes(a.private, 'private'), yes(a.sensitive, 'sensitive'),
        yes(a.extractable, 'extractable'), yes(a.encrypt, 'encrypt'), yes(a.decrypt, 'decrypt')].join(', ')}; KCV ${kcv(p11, s, key)}`);
      if (a.keyType !== P11.CKK_AES || a.valueLen !== 16) warn(`key ${label} is not AES-128`);
      if (a.extractable) warn(`key ${label} is extractable: its value can leave the token`);
      if (!a.sensitive) warn(`key ${label} is not sensitive: its value can be read`);
      if (!a.private) warn(`key ${label} is not private: usable without login`);
      if (a.decrypt) warn(`key ${label} can decrypt; a master key only needs encrypt`);
    }
  });

  // Self-test through the resolver the server uses: pooled async and batch sync must agree.
  // check reports weak keys as warnings above; the self-test must still run on them.
  const source = await openKeySource({ ...config, allowExtractableKey: true });
  try {
    if (!(source instanceof Pkcs11Resolver)) throw new Error('unexpected key source');
    const probe = Buffer.from('coap-psk-self-test');
    const asyncKey = await source.derive(md5Block(probe));
    const [syncKey] = source.deriveSync([probe]);
    if (!asyncKey || !syncKey || asyncKey.length !== 16 || !asyncKey.equals(syncKey)) throw new UserError('self-test failed: derivations disagree');
    asyncKey.fill(0);
    syncKey.fill(0);
    print(`self-test: derivation under ${config.keyLabels[0]} OK`);
  } finally {
    await source.close();
  }
  print(warnings ? `${warnings} warning(s)` : 'all checks passed');
  return { warnings };
}
