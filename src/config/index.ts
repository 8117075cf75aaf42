/**
 * The effective configuration of `coap-psk serve`: defaults < config file < environment < flags,
 * validated by the one schema of ./schema.ts. A bad value fails with one line that names the
 * field and where the value came from, e.g. `config dtls.mtu (--mtu): must be ≥ 256`.
 *
 * The key settings are handed on to loadKeyConfig (./keys.ts) as the COAP_PSK_* variables it
 * already understands, so that its mode rules and checks stay in one place.
 */
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { UserError } from '../errors.js';
import { CIPHER_SUITES } from '../dtls/ciphers/index.js';
import { DEFAULT_DTLS_CONFIG, type DtlsServerConfig } from '../dtls/config.js';
import { COAP_DEFAULTS } from '../coap/endpoint.js';
import { loadKeyConfig, type KeyConfig } from './keys.js';
import { nodeIdFromHostname, parseClusterPeers, type ClusterPeer } from '../cluster/cluster-settings.js';
import { GROUP_IDS, configSchema, settings, suiteId, type SectionName, type ServeConfig, type SettingInfo } from './schema.js';

export { configSchema, settings, type ServeConfig, type SettingInfo } from './schema.js';

type Env = Record<string, string | undefined>;

export interface ConfigSources {
  /** Parsed flags by flag name (`metrics-port`), as commander gives them: strings or true. */
  flags?: Record<string, string | boolean | undefined>;
  env?: Env;
  /** --config: a JSON or YAML file. */
  file?: string;
  /**
   * Take flags and environment for this section only (derive and hsm take the keys section:
   * a bad dtls variable in the environment is serve's business). The file is still read whole.
   */
  only?: SectionName;
  /** Whether the logs go to a terminal (the log format's default); default process.stderr.isTTY. */
  stderrIsTTY?: boolean;
  /** The host name a node id may come from (a StatefulSet pod's); default os.hostname(). */
  hostname?: string;
}

/**
 * CID forwarding between nodes (docs/cluster.md), as set; on when `port` is set. What it then
 * needs (a node id, a readable key file) is checked at start (src/cluster/node-settings.ts), so
 * that --print-config shows a configuration that lacks them.
 */
export interface ClusterConfig {
  port?: number;
  /** cluster.nodeId, or else the ordinal of a hostname ending in -N. */
  nodeId?: number;
  /** Where the node id came from: `--node-id`, `COAP_PSK_CLUSTER_NODE_ID`, a file, `hostname coap-psk-2`. */
  nodeIdOrigin?: string;
  hostname: string;
  keyFile?: string;
  peers: ClusterPeer[];
  dns?: string;
  /** Replies to forwarded records go back through the receiving node (default true). */
  backward: boolean;
}

export interface ResolvedConfig {
  /** The validated merge of every layer, without defaults (what was actually set). */
  raw: ServeConfig;
  listener: { host: string; port: number; pidFile?: string };
  keys: KeyConfig;
  /** Only the DTLS settings that were set; DtlsServer fills in the rest. */
  dtls: Partial<DtlsServerConfig>;
  metrics: { port?: number; host: string };
  log: { level: string; format: 'json' | 'pretty' };
  keylog?: string;
  /** `dtls.ticketKeyFile`: the session ticket secrets (read by createServer, never printed). */
  ticketKeyFile?: string;
  /** `keys.ticketKeyLabel`: the HSM key that derives ticket secrets. */
  ticketKeyLabel?: string;
  /** Deprecated `coap.replyCacheEntries` as set (coap.replyCacheBytes is derived from it when unset). */
  replyCacheEntries?: number;
  /** The CoAP layer's bounds that were set; createServer fills in the rest. */
  coap: { replyCacheBytes?: number; maxObserveRelations?: number; maxBlock1Body?: number };
  routes?: string;
  identityPattern?: string;
  cluster: ClusterConfig;
  /** Where each set value came from, by dotted path: `--mtu`, `COAP_PSK_DTLS_MTU`, `file.yaml`. */
  origins: ReadonlyMap<string, string>;
}

export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_PORT = 5684;
export const DEFAULT_METRICS_HOST = '127.0.0.1';

const SECTIONS = Object.keys(configSchema.shape) as (keyof ServeConfig)[];

/** Reads, merges and validates every layer. Throws UserError with one line. */
export function resolveConfig(sources: ConfigSources = {}): ResolvedConfig {
  const env = sources.env ?? process.env;
  const origins = new Map<string, string>();
  const merged: Record<string, Record<string, unknown>> = Object.fromEntries(SECTIONS.map((s) => [s, {}]));

  if (sources.file !== undefined) {
    const fromFile = readConfigFile(sources.file);
    for (const [section, value] of Object.entries(fromFile)) {
      if (!SECTIONS.includes(section as keyof ServeConfig)) throw new UserError(`config ${section} (${sources.file}): unknown section (known: ${SECTIONS.join(', ')})`);
      if (value === null || value === undefined) continue;
      if (typeof value !== 'object' || Array.isArray(value)) throw new UserError(`config ${section} (${sources.file}): must be a mapping of settings`);
      for (const [key, v] of Object.entries(value)) {
        merged[section]![key] = v;
        origins.set(`${section}.${key}`, sources.file);
      }
    }
  }
  const all = settings();
  for (const s of all) {
    if (sources.only !== undefined && s.path[0] !== sources.only) continue;
    // A list given as "a, b" in the file is taken like the same text in the environment.
    const key = dotted(s);
    const fileValue = merged[s.path[0]]![s.path[1]];
    if (s.kind === 'list' && typeof fileValue === 'string') merged[s.path[0]]![s.path[1]] = fromText(s, fileValue);
    const envName = s.env?.find((n) => env[n] !== undefined && env[n] !== '');
    if (envName !== undefined) {
      merged[s.path[0]]![s.path[1]] = fromText(s, env[envName]!);
      origins.set(key, envName);
    }
    const flag = s.flag === undefined ? undefined : flagValue(s.flag, sources.flags);
    if (flag !== undefined) {
      merged[s.path[0]]![s.path[1]] = typeof flag === 'boolean' ? flag : fromText(s, flag);
      origins.set(key, `--${s.flag}`);
    }
  }

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new UserError(describeIssue(parsed.error.issues[0]!, origins));
  const raw = parsed.data;
  return {
    raw,
    listener: { host: raw.listener.host ?? DEFAULT_HOST, port: raw.listener.port ?? DEFAULT_PORT, ...(raw.listener.pidFile ? { pidFile: raw.listener.pidFile } : {}) },
    keys: loadKeys(raw, env, origins),
    dtls: dtlsOverrides(raw),
    metrics: { port: raw.metrics.port, host: raw.metrics.host ?? DEFAULT_METRICS_HOST },
    // Unset: readable in a terminal, JSON lines for anything else (a pipe, a journal, a shipper).
    log: { level: raw.log.level ?? 'info', format: raw.log.format ?? ((sources.stderrIsTTY ?? process.stderr.isTTY) === true ? 'pretty' : 'json') },
    keylog: raw.keylog.file,
    ticketKeyFile: raw.dtls.ticketKeyFile,
    ticketKeyLabel: raw.keys.ticketKeyLabel,
    replyCacheEntries: raw.coap.replyCacheEntries,
    coap: {
      replyCacheBytes: raw.coap.replyCacheBytes ?? (raw.coap.replyCacheEntries === undefined ? undefined : raw.coap.replyCacheEntries * 400),
      maxObserveRelations: raw.coap.maxObserveRelations,
      maxBlock1Body: raw.coap.maxBlock1Body,
    },
    routes: raw.routes.file,
    identityPattern: raw.identity.pattern,
    cluster: clusterConfig(raw, origins, sources.hostname ?? osHostname()),
    origins,
  };
}

function clusterConfig(raw: ServeConfig, origins: ReadonlyMap<string, string>, hostname: string): ClusterConfig {
  const c = raw.cluster;
  const fromHost = c.nodeId === undefined ? nodeIdFromHostname(hostname) : undefined;
  const peers = c.peers && parseClusterPeers(c.peers.join(',')); // the schema checked them
  return {
    port: c.port,
    nodeId: c.nodeId ?? fromHost,
    nodeIdOrigin: c.nodeId !== undefined ? origins.get('cluster.nodeId') : fromHost !== undefined ? `hostname ${hostname}` : undefined,
    hostname,
    keyFile: c.keyFile,
    peers: peers?.ok ? peers.value : [],
    dns: c.dns,
    backward: c.backward ?? true,
  };
}

function dotted(s: SettingInfo): string {
  return `${s.path[0]}.${s.path[1]}`;
}

/**
 * A flag's value as parsed. `--no-x` is a negation: commander sets `x` to true when absent and
 * false when given, so only false counts (an absent flag must not hide the environment's value).
 */
function flagValue(flag: string, flags: ConfigSources['flags']): string | boolean | undefined {
  if (flag.startsWith('no-')) return flags?.[camel(flag.slice(3))] === false || flags?.[flag] === true ? false : undefined;
  return flags?.[camel(flag)] ?? flags?.[flag];
}

/** commander turns --metrics-port into metricsPort. */
export function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Text from the environment or a flag, as the kind of value the schema expects. */
function fromText(s: SettingInfo, text: string): unknown {
  const t = text.trim();
  switch (s.kind) {
    case 'int':
      return /^-?\d+$/.test(t) ? Number(t) : t; // not a number: zod says so, naming the field
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(t)) return true;
      if (/^(false|0|no|off)$/i.test(t)) return false;
      return t;
    case 'list':
      return t.split(',').map((x) => x.trim());
    default:
      return text;
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`config file ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let data: unknown;
  const json = extname(file).toLowerCase() === '.json';
  try {
    // YAML 1.2 is a superset of JSON; JSON.parse is only used for .json files to keep its errors.
    data = json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    const where = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new UserError(`config file ${file}: not valid ${json ? 'JSON' : 'YAML'}${where ? ` (line ${where})` : ''}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new UserError(`config file ${file}: must be a mapping of sections (listener, keys, dtls, ...)`);
  return data as Record<string, unknown>;
}

function describeIssue(issue: z.core.$ZodIssue, origins: ReadonlyMap<string, string>): string {
  const path = issue.path.map(String);
  // Array items (dtls.cipherSuites.1) are reported on the setting itself.
  const field = path.slice(0, 2).join('.');
  if (issue.code === 'unrecognized_keys') {
    const where = path.length === 0 ? 'config' : `config ${field}`;
    const known = path.length === 1 ? Object.keys((configSchema.shape as Record<string, z.ZodObject>)[path[0]!]?.shape ?? {}) : [];
    return `${where}: unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}${known.length ? ` (known: ${known.join(', ')})` : ''}`;
  }
  const origin = origins.get(field);
  // `pin: 1234` in YAML is a number; the value is not repeated: it may be a secret.
  const message = issue.code === 'invalid_type' && issue.expected === 'string' ? 'must be text: in YAML, put the value in quotes (e.g. pin: "0123")' : issue.message;
  return `config ${field}${origin ? ` (${origin})` : ''}: ${message}`;
}

/** Names of the environment variables of the keys section. */
function keySettings(): SettingInfo[] {
  return settings().filter((s) => s.path[0] === 'keys');
}

/**
 * The key configuration through loadKeyConfig, fed with the merged keys section as the
 * COAP_PSK_* variables it reads. Its messages name those variables; they are reworded to
 * name the config field too.
 */
function loadKeys(raw: ServeConfig, env: Env, origins: ReadonlyMap<string, string>): KeyConfig {
  const keyEnv: Env = { ...env };
  const names: [string, string][] = [];
  for (const s of keySettings()) {
    const name = s.env![0]!;
    names.push([name, `keys.${s.path[1]}`]);
    for (const n of s.env!) delete keyEnv[n];
    const v = (raw.keys as Record<string, unknown>)[s.path[1]];
    if (v !== undefined) keyEnv[name] = Array.isArray(v) ? v.join(',') : String(v);
  }
  try {
    const config = loadKeyConfig(keyEnv);
    const pinFileOrigin = origins.get('keys.pinFile');
    if (config.mode === 'pkcs11' && pinFileOrigin !== undefined && pinFileOrigin !== 'COAP_PSK_PIN_FILE') {
      config.pinFileSetting = `config keys.pinFile (${pinFileOrigin})`;
    }
    return config;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    let message = e.message;
    for (const [name, field] of names) {
      const origin = origins.get(field);
      message = message.replace(new RegExp(`\\b${name}\\b`, 'g'), origin && origin !== name ? `${field} (${origin})` : `${field} (${name})`);
    }
    throw new UserError(`config ${message}`);
  }
}

function dtlsOverrides(raw: ServeConfig): Partial<DtlsServerConfig> {
  const d = raw.dtls;
  const out: Partial<DtlsServerConfig> = {};
  if (d.cipherSuites) out.cipherSuites = [...new Set(d.cipherSuites.map((s) => suiteId(s)!))];
  if (d.groups) out.groups = [...new Set(d.groups.map((g) => GROUP_IDS[g.toLowerCase()]!))];
  if (d.identityHint !== undefined) out.identityHint = Buffer.from(d.identityHint, 'utf8');
  if (d.requireExtendedMasterSecret !== undefined) out.requireExtendedMasterSecret = d.requireExtendedMasterSecret;
  if (d.retransmitInitialMs !== undefined || d.retransmitMaxMs !== undefined || d.maxRetransmits !== undefined) {
    const r = DEFAULT_DTLS_CONFIG.retransmit;
    out.retransmit = {
      initialMs: d.retransmitInitialMs ?? r.initialMs,
      maxMs: d.retransmitMaxMs ?? Math.max(r.maxMs, d.retransmitInitialMs ?? 0),
      maxRetransmits: d.maxRetransmits ?? r.maxRetransmits,
    };
    if (out.retransmit.maxMs < out.retransmit.initialMs) throw new UserError('config dtls.retransmitMaxMs: must be ≥ dtls.retransmitInitialMs');
  }
  const plain = [
    'mtu', 'idleTimeoutMs', 'handshakeTimeoutMs', 'maxSessions', 'maxHandshakes', 'maxQueuedRecords',
    'maxReassemblyBytes', 'maxIdentityLength', 'cookieRotationMs', 'recvBufferSize', 'sendBufferSize',
    'maxPendingKeyLookups', 'keyLookupTimeoutMs', 'handshakeRatePerSource', 'handshakeBurstPerSource',
    'ticketLifetimeMs', 'sessionCacheMax', 'cidLength',
  ] as const;
  for (const k of plain) if (d[k] !== undefined) out[k] = d[k];
  if (d.resumption !== undefined) out.resumption = d.resumption;
  return out;
}

const MASK = '***';

/**
 * The effective configuration, defaults filled in, for `--print-config`: secrets masked
 * (PIN, software master keys), suites and groups by name. Safe to paste into a ticket.
 */
export function printableConfig(c: ResolvedConfig): Record<string, unknown> {
  const dtls = { ...DEFAULT_DTLS_CONFIG, ...c.dtls };
  const groupName = (id: number) => (id === 29 ? 'x25519' : id === 23 ? 'secp256r1' : String(id));
  const k = c.keys;
  const keys: Record<string, unknown> =
    k.mode === 'software'
      ? { mode: 'software', masterKeyHex: MASK, keyLabels: k.keys.map((x) => x.label), encoding: k.encoding }
      : {
          mode: 'pkcs11',
          pkcs11Module: k.modulePath,
          tokenLabel: k.tokenLabel,
          ...(k.pin ? { pin: MASK } : {}),
          ...(k.pinFile ? { pinFile: k.pinFile } : {}),
          keyLabels: k.keyLabels,
          encoding: k.encoding,
          poolSize: k.poolSize,
          ...(k.softhsmConf ? { softhsmConf: k.softhsmConf } : {}),
          developmentToken: k.devDefault,
        };
  if (k.mode === 'pkcs11') {
    keys.allowExtractableKey = k.allowExtractableKey;
    keys.syncDerivation = k.syncDerivation;
  }
  keys.denyList = k.denyListFile ?? null;
  keys.ticketKeyLabel = c.ticketKeyLabel ?? null;
  keys.cacheMax = k.cache.enabled === false ? 0 : k.cache.maxEntries;
  keys.cacheTtlMs = k.cache.ttlMs;
  keys.cacheNegativeTtlMs = k.cache.negativeTtlMs;
  return {
    listener: c.listener,
    keys,
    dtls: {
      cipherSuites: dtls.cipherSuites.map((id) => CIPHER_SUITES.get(id)?.name ?? `0x${id.toString(16)}`),
      groups: dtls.groups.map(groupName),
      identityHint: dtls.identityHint.toString('utf8'),
      requireExtendedMasterSecret: dtls.requireExtendedMasterSecret,
      mtu: dtls.mtu,
      idleTimeoutMs: dtls.idleTimeoutMs,
      handshakeTimeoutMs: dtls.handshakeTimeoutMs,
      retransmitInitialMs: dtls.retransmit.initialMs,
      retransmitMaxMs: dtls.retransmit.maxMs,
      maxRetransmits: dtls.retransmit.maxRetransmits,
      maxSessions: dtls.maxSessions,
      maxHandshakes: dtls.maxHandshakes,
      maxQueuedRecords: dtls.maxQueuedRecords,
      maxReassemblyBytes: dtls.maxReassemblyBytes,
      maxIdentityLength: dtls.maxIdentityLength,
      cookieRotationMs: dtls.cookieRotationMs,
      maxPendingKeyLookups: dtls.maxPendingKeyLookups,
      keyLookupTimeoutMs: dtls.keyLookupTimeoutMs,
      handshakeRatePerSource: dtls.handshakeRatePerSource,
      handshakeBurstPerSource: dtls.handshakeBurstPerSource,
      recvBufferSize: dtls.recvBufferSize,
      sendBufferSize: dtls.sendBufferSize,
      cidLength: dtls.cidLength,
      resumption: dtls.resumption,
      ticketLifetimeMs: dtls.ticketLifetimeMs,
      sessionCacheMax: dtls.sessionCacheMax,
      ticketKeyFile: c.ticketKeyFile ?? null,
    },
    metrics: { port: c.metrics.port ?? null, host: c.metrics.host },
    log: c.log,
    keylog: { file: c.keylog ?? null },
    coap: {
      replyCacheBytes: c.coap.replyCacheBytes ?? COAP_DEFAULTS.replyCacheBytes,
      replyCacheEntries: c.replyCacheEntries ?? null,
      maxObserveRelations: c.coap.maxObserveRelations ?? COAP_DEFAULTS.maxObserveRelations,
      maxBlock1Body: c.coap.maxBlock1Body ?? COAP_DEFAULTS.maxBlock1Body,
    },
    routes: { file: c.routes ?? null },
    identity: { pattern: c.identityPattern ?? null },
    cluster: {
      port: c.cluster.port ?? null,
      nodeId: c.cluster.nodeId ?? null,
      keyFile: c.cluster.keyFile ?? null,
      peers: c.cluster.peers.map((p) => `${p.nodeId}=${p.host.includes(':') ? `[${p.host}]` : p.host}:${p.port}`),
      dns: c.cluster.dns ?? null,
      backward: c.cluster.backward,
    },
  };
}
