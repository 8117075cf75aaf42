/**
 * Key configuration from flags and environment, shared by `serve`, `derive` and `hsm`.
 *
 * Three modes:
 *  - pkcs11: any of COAP_PSK_PKCS11_MODULE / _TOKEN_LABEL / _PIN / _PIN_FILE is set;
 *  - software: COAP_PSK_MASTER_KEY_HEX is set (development only, warns at start);
 *  - dev default: nothing set; the project's SoftHSM token from `coap-psk hsm init-dev`.
 * Every bad value is a UserError naming the setting, never showing a secret.
 */
import { statSync } from 'node:fs';
import { UserError } from '../errors.js';
import { DenyListResolver } from '../keys/deny-list.js';
import { CachingResolver, type CacheOptions } from '../keys/cache.js';
import {
  DEV_KEY_LABEL, DEV_TOKEN_LABEL, PROJECT_ROOT, SOFTHSM_MODULE, devPaths, initDevToken, readPinFile,
} from '../keys/devtoken.js';
import { Pkcs11Resolver } from '../keys/pkcs11.js';
import { SoftwareResolver } from '../keys/software.js';
import type { KeyEncoding, KeyResolver } from '../keys/types.js';

export interface Pkcs11KeyConfig {
  mode: 'pkcs11';
  modulePath: string;
  tokenLabel: string;
  /** The PIN itself (COAP_PSK_PIN) or where to read it (COAP_PSK_PIN_FILE, dev .dev/pin). */
  pin?: Buffer;
  pinFile?: string;
  /** How errors name the PIN file setting: `COAP_PSK_PIN_FILE`, or `config keys.pinFile (file.yaml)`. */
  pinFileSetting?: string;
  keyLabels: string[];
  encoding: KeyEncoding;
  /** Set into process.env.SOFTHSM2_CONF before the module is initialized, when defined. */
  softhsmConf?: string;
  /** Nothing was configured: the project's development token. */
  devDefault: boolean;
  poolSize: number;
  /** Accept a master key that is extractable or not sensitive (COAP_PSK_ALLOW_EXTRACTABLE_KEY / --allow-extractable-key). */
  allowExtractableKey: boolean;
  /** Derive synchronously (COAP_PSK_PKCS11_SYNC): in-process tokens only. */
  syncDerivation: boolean;
  cache: CacheOptions;
  denyListFile?: string;
}

export interface SoftwareKeyConfig {
  mode: 'software';
  keys: { label: string; master: Buffer }[];
  encoding: KeyEncoding;
  cache: CacheOptions;
  denyListFile?: string;
}

export type KeyConfig = Pkcs11KeyConfig | SoftwareKeyConfig;

export interface KeyFlags {
  /** Overrides COAP_PSK_KEY_ENCODING. */
  encoding?: string;
  /** Create the development token when it is missing (the dev start script). */
  autoInitDev?: boolean;
  /** Where `.dev/` lives (tests); default: the project root. */
  projectRoot?: string;
  /** Overrides COAP_PSK_ALLOW_EXTRACTABLE_KEY. */
  allowExtractableKey?: boolean;
}

type Env = Record<string, string | undefined>;

const PKCS11_SETTINGS = ['COAP_PSK_PKCS11_MODULE', 'COAP_PSK_TOKEN_LABEL', 'COAP_PSK_PIN', 'COAP_PSK_PIN_FILE'] as const;

function setting(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function parseEncoding(value: string | undefined, name: string): KeyEncoding {
  if (value === undefined) return 'raw';
  if (value === 'raw' || value === 'hex') return value;
  throw new UserError(`${name} must be raw or hex (got "${value}")`);
}

function parseLabels(value: string | undefined, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  const labels = value.split(',').map((l) => l.trim());
  if (labels.some((l) => l === '')) throw new UserError('COAP_PSK_KEY_LABEL has an empty label (comma-separated list, newest first)');
  if (new Set(labels).size !== labels.length) throw new UserError('COAP_PSK_KEY_LABEL lists a label twice');
  return labels;
}

function parseInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const v = setting(env, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UserError(`${name} must be an integer from ${min} to ${max} (got "${v}")`);
  return Number(v);
}

function parseCache(env: Env): CacheOptions {
  const max = parseInt(env, 'COAP_PSK_CACHE_MAX', 10_000, 0, 10_000_000);
  return {
    enabled: max > 0,
    maxEntries: Math.max(1, max),
    ttlMs: parseInt(env, 'COAP_PSK_CACHE_TTL_MS', 600_000, 0, 86_400_000),
    negativeTtlMs: parseInt(env, 'COAP_PSK_CACHE_NEGATIVE_TTL_MS', 10_000, 0, 86_400_000),
  };
}

function parseBool(env: Env, name: string): boolean {
  const v = setting(env, name);
  if (v === undefined) return false;
  if (/^(1|true|yes)$/i.test(v)) return true;
  if (/^(0|false|no)$/i.test(v)) return false;
  throw new UserError(`${name} must be true or false (got "${v}")`);
}

export function loadKeyConfig(env: Env = process.env, flags: KeyFlags = {}): KeyConfig {
  const encodingName = flags.encoding !== undefined ? '--key-encoding' : 'COAP_PSK_KEY_ENCODING';
  const encoding = parseEncoding(flags.encoding ?? setting(env, 'COAP_PSK_KEY_ENCODING'), encodingName);
  const cache = parseCache(env);
  const masterHex = setting(env, 'COAP_PSK_MASTER_KEY_HEX');
  const denyListFile = setting(env, 'COAP_PSK_DENY_LIST');
  const pkcs11Given = PKCS11_SETTINGS.filter((n) => setting(env, n) !== undefined);

  if (masterHex !== undefined) {
    if (pkcs11Given.length > 0) throw new UserError(`COAP_PSK_MASTER_KEY_HEX cannot be combined with ${pkcs11Given[0]}`);
    const hexes = masterHex.split(',').map((h) => h.trim());
    if (hexes.some((h) => !/^[0-9a-fA-F]{32}$/.test(h))) {
      throw new UserError('COAP_PSK_MASTER_KEY_HEX must be 32 hex digits per key (comma-separated, newest first)');
    }
    const labels = parseLabels(setting(env, 'COAP_PSK_KEY_LABEL'), hexes.length === 1 ? ['software'] : hexes.map((_, i) => `software-${i + 1}`));
    if (labels.length !== hexes.length) throw new UserError('COAP_PSK_KEY_LABEL must name one label per key of COAP_PSK_MASTER_KEY_HEX');
    return { mode: 'software', keys: hexes.map((h, i) => ({ label: labels[i]!, master: Buffer.from(h, 'hex') })), encoding, cache, denyListFile };
  }

  const poolSize = parseInt(env, 'COAP_PSK_POOL_SIZE', 4, 1, 256);
  const allowExtractableKey = flags.allowExtractableKey ?? parseBool(env, 'COAP_PSK_ALLOW_EXTRACTABLE_KEY');
  const syncDerivation = parseBool(env, 'COAP_PSK_PKCS11_SYNC');
  if (pkcs11Given.length === 0) {
    const dev = devPaths(flags.projectRoot ?? PROJECT_ROOT);
    return {
      mode: 'pkcs11',
      modulePath: SOFTHSM_MODULE,
      tokenLabel: DEV_TOKEN_LABEL,
      pinFile: dev.pinFile,
      keyLabels: parseLabels(setting(env, 'COAP_PSK_KEY_LABEL'), [DEV_KEY_LABEL]),
      encoding,
      softhsmConf: setting(env, 'SOFTHSM2_CONF') ?? dev.confPath,
      devDefault: true,
      poolSize,
      allowExtractableKey,
      syncDerivation,
      cache,
      denyListFile,
    };
  }

  const tokenLabel = setting(env, 'COAP_PSK_TOKEN_LABEL');
  if (tokenLabel === undefined) throw new UserError('COAP_PSK_TOKEN_LABEL is not set (the label of the token that holds the master key)');
  const pinText = setting(env, 'COAP_PSK_PIN');
  const pinFile = setting(env, 'COAP_PSK_PIN_FILE');
  if (pinText !== undefined && pinFile !== undefined) throw new UserError('set COAP_PSK_PIN or COAP_PSK_PIN_FILE, not both');
  if (pinText === undefined && pinFile === undefined) throw new UserError('COAP_PSK_PIN_FILE (or COAP_PSK_PIN) is not set');
  return {
    mode: 'pkcs11',
    modulePath: setting(env, 'COAP_PSK_PKCS11_MODULE') ?? SOFTHSM_MODULE,
    tokenLabel,
    pin: pinText !== undefined ? Buffer.from(pinText, 'utf8') : undefined,
    pinFile,
    keyLabels: parseLabels(setting(env, 'COAP_PSK_KEY_LABEL'), [DEV_KEY_LABEL]),
    encoding,
    // SoftHSM reads SOFTHSM2_CONF from the environment by itself.
    softhsmConf: setting(env, 'SOFTHSM2_CONF'),
    devDefault: false,
    poolSize,
    allowExtractableKey,
    syncDerivation,
    cache,
    denyListFile,
  };
}

async function readPin(config: Pkcs11KeyConfig): Promise<Buffer> {
  if (config.pin) return Buffer.from(config.pin);
  const file = config.pinFile!;
  const name = config.devDefault ? 'development PIN file' : (config.pinFileSetting ?? 'COAP_PSK_PIN_FILE');
  try {
    const mode = statSync(file).mode;
    if (mode & 0o077) process.stderr.write(`coap-psk: warning: ${file} is readable by other users; chmod 600 it\n`);
    const pin = await readPinFile(file);
    if (pin.length === 0) throw new UserError(`${name} is empty: ${file}`);
    return pin;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${name} cannot be read: ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

const DEV_HINT = 'development token not found: run `npx coap-psk hsm init-dev` in the clone (or configure COAP_PSK_PKCS11_MODULE, COAP_PSK_TOKEN_LABEL, COAP_PSK_PIN_FILE)';
/** Installed as a dependency, the package folder is no place for a token: the next `npm ci` wipes it. */
const INSTALLED_HINT = 'no PKCS#11 token configured: set COAP_PSK_PKCS11_MODULE, COAP_PSK_TOKEN_LABEL and COAP_PSK_PIN_FILE, or for a first try COAP_PSK_MASTER_KEY_HEX (software keys, development only)';

function devHint(): string {
  return /[/\\]node_modules[/\\]/.test(PROJECT_ROOT) ? INSTALLED_HINT : DEV_HINT;
}

/** SoftHSM without SOFTHSM2_CONF looks in its system-wide store, where the development token is not. */
function tokenNotFoundHint(config: Pkcs11KeyConfig, message: string): string {
  if (config.devDefault || !/softhsm/i.test(config.modulePath) || process.env.SOFTHSM2_CONF !== undefined) return message;
  return `${message} (SOFTHSM2_CONF is not set, so SoftHSM looks in its system-wide token store; the development token's is ${devPaths().confPath})`;
}

/**
 * The second HSM key that only derives session ticket secrets (docs/resumption.md): a block
 * cipher over it, on a session pool of its own, so that device PSKs are never derived under it.
 * Software keys have no such key: the setting then fails the start.
 */
export async function openTicketKeyCipher(config: KeyConfig, label: string): Promise<{ encryptBlock(block: Buffer): Promise<Buffer>; close(): Promise<void> }> {
  if (config.mode === 'software') throw new UserError('config keys.ticketKeyLabel: needs the PKCS#11 key source (use dtls.ticketKeyFile with software keys)');
  const pin = await readPin(config);
  let hsm: Pkcs11Resolver;
  try {
    hsm = await Pkcs11Resolver.open({
      modulePath: config.modulePath, tokenLabel: config.tokenLabel, pin, keyLabels: [label], poolSize: 1,
      allowExtractableKey: config.allowExtractableKey,
    });
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`config keys.ticketKeyLabel: ${e.message}`);
    throw e;
  } finally {
    pin.fill(0);
  }
  return {
    async encryptBlock(block) {
      const out = await hsm.derive(block, label);
      if (!out) throw new Error(`PKCS#11 ticket key ${label} is gone from the token`);
      return out;
    },
    close: () => hsm.close(),
  };
}

/** The uncached resolver: for `derive` and `hsm check`, which want every derivation to hit the token. */
export async function openKeySource(config: KeyConfig, flags: KeyFlags = {}): Promise<Pkcs11Resolver | SoftwareResolver> {
  if (config.mode === 'software') return new SoftwareResolver({ keys: config.keys, encoding: config.encoding });
  if (config.softhsmConf !== undefined) process.env.SOFTHSM2_CONF = config.softhsmConf;
  if (config.devDefault) {
    if (flags.autoInitDev) {
      const { created } = await initDevToken({ root: flags.projectRoot, softhsmConf: config.softhsmConf, modulePath: config.modulePath });
      if (created) process.stderr.write(`coap-psk: created development token ${config.tokenLabel} (PIN in ${config.pinFile})\n`);
    } else if (!statSafe(config.pinFile!)) {
      throw new UserError(devHint());
    }
  }
  const pin = await readPin(config);
  try {
    return await Pkcs11Resolver.open({
      modulePath: config.modulePath,
      tokenLabel: config.tokenLabel,
      pin,
      keyLabels: config.keyLabels,
      encoding: config.encoding,
      poolSize: config.poolSize,
      allowExtractableKey: config.allowExtractableKey,
      syncDerivation: config.syncDerivation,
    });
  } catch (e) {
    if (e instanceof UserError && e.message.startsWith('PKCS#11 token not found')) {
      throw new UserError(config.devDefault ? devHint() : tokenNotFoundHint(config, e.message));
    }
    throw e;
  } finally {
    pin.fill(0);
  }
}

function statSafe(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The resolver `serve` uses: the key source behind the cache (unless COAP_PSK_CACHE_MAX=0). */
export async function createResolver(config: KeyConfig, flags: KeyFlags = {}): Promise<KeyResolver> {
  const source = await openKeySource(config, flags);
  const cached = config.cache.enabled === false ? source : new CachingResolver(source, config.cache);
  if (config.denyListFile === undefined) return cached;
  try {
    // In front of the cache, so that a reload takes effect for cached serials too.
    return await DenyListResolver.open(cached, config.denyListFile);
  } catch (e) {
    await cached.close();
    throw e;
  }
}
