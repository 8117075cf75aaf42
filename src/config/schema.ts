/**
 * The one schema of `coap-psk serve`'s configuration. The same zod object validates the config
 * file, and its leaves' metadata names the environment variable and the flag of each setting,
 * so that file, environment and flags can never drift apart (src/config/index.ts walks it).
 *
 * Every setting is optional here: a value absent from every layer takes the default that the
 * component owning it documents (DtlsServerConfig, loadKeyConfig, ...). That way there is one
 * default per setting, not one here and another one there.
 */
import { z } from 'zod';
import { CIPHER_SUITES, suiteByName } from '../dtls/ciphers/index.js';
import { parseClusterPeers } from '../cluster/cluster-settings.js';
import { MAX_NODE_ID } from '../cluster/forward-wire.js';

/** How a string from the environment or a flag becomes a value for zod. */
export type SettingKind = 'string' | 'int' | 'bool' | 'list';

export interface SettingMeta {
  /** Environment variables, first one wins (e.g. COAP_PSK_KEYLOG, then SSLKEYLOGFILE). */
  env?: readonly string[];
  /** Long flag without dashes; absent: no flag (secrets never reach argv). */
  flag?: string;
  kind: SettingKind;
  /** Shown as `***` by --print-config. */
  secret?: boolean;
  description: string;
}

const meta = (m: SettingMeta) => m as unknown as Record<string, unknown>;

const port = z.number({ error: 'must be a port number' }).int('must be an integer').min(0, 'must be ≥ 0').max(65535, 'must be ≤ 65535');
const count = (min: number, max: number) =>
  z.number({ error: 'must be a number' }).int('must be an integer').min(min, `must be ≥ ${min}`).max(max, `must be ≤ ${max}`);

/** Cipher suite names (IANA or OpenSSL spelling) or IANA values (number or "0xC0A8"). */
const cipherSuite = z.union([z.string(), z.number()]).refine((v) => suiteId(v) !== undefined, {
  error: (issue) => `unknown cipher suite ${JSON.stringify(issue.input)} (IANA name such as TLS_PSK_WITH_AES_128_CCM_8, or OpenSSL name such as PSK-AES128-CCM8)`,
});

export function suiteId(v: string | number): number | undefined {
  if (typeof v === 'number') return CIPHER_SUITES.has(v) ? v : undefined;
  const s = v.trim();
  if (/^0x[0-9a-f]{1,4}$/i.test(s)) return suiteId(Number.parseInt(s, 16));
  return suiteByName(s)?.id;
}

export const GROUP_IDS: Readonly<Record<string, number>> = { x25519: 29, secp256r1: 23, 'p-256': 23, prime256v1: 23 };

const identityPattern = z.string().superRefine((s, ctx) => {
  let re: RegExp;
  try {
    re = new RegExp(s, 'u');
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `is not a valid regular expression (${(e as Error).message.replace(/^Invalid regular expression: /, '')})` });
    return;
  }
  if (!/\(\?<serial>/.test(re.source)) ctx.addIssue({ code: 'custom', message: 'must have a named group (?<serial>...)' });
});

/** `id=host:port` entries (docs/cluster.md); the first bad one is named with why. */
const clusterPeers = z.array(z.string()).min(1, 'must list at least one peer').superRefine((entries, ctx) => {
  const parsed = parseClusterPeers(entries.join(','));
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.error });
});

export const configSchema = z.strictObject({
  listener: z.strictObject({
    host: z.string().min(1, 'must not be empty').optional()
      .meta(meta({ env: ['COAP_PSK_HOST'], flag: 'host', kind: 'string', description: 'address to bind (default 0.0.0.0)' })),
    port: port.optional()
      .meta(meta({ env: ['COAP_PSK_PORT'], flag: 'port', kind: 'int', description: 'UDP port (default 5684)' })),
    // 'int' kind: "auto" is not digits, so it reaches zod as the string it is.
    workers: z.union([z.literal('auto'), count(1, 1024)], { error: 'must be a number of worker processes (1 to 1024) or auto' }).optional()
      .meta(meta({ env: ['COAP_PSK_WORKERS'], flag: 'workers', kind: 'int', description: 'worker processes, each with its own socket on the port (Node ≥ 22.12 for more than 1), or auto: one per core (default 1)' })),
    pidFile: z.string().min(1, 'must not be empty').optional()
      .meta(meta({ env: ['COAP_PSK_PID_FILE'], flag: 'pid-file', kind: 'string', description: 'write the PID here while serving (a takeover successor writes its own; systemd PIDFile=)' })),
  }),
  keys: z.strictObject({
    pkcs11Module: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_PKCS11_MODULE'], flag: 'pkcs11-module', kind: 'string', description: 'path of the PKCS#11 module' })),
    tokenLabel: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_TOKEN_LABEL'], flag: 'token-label', kind: 'string', description: 'label of the token holding the master key' })),
    pinFile: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_PIN_FILE'], flag: 'pin-file', kind: 'string', description: 'file holding the user PIN' })),
    pin: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_PIN'], kind: 'string', secret: true, description: 'the user PIN itself (prefer pinFile); never a flag' })),
    keyLabels: z.array(z.string().min(1, 'has an empty label')).min(1).optional()
      .meta(meta({ env: ['COAP_PSK_KEY_LABEL'], flag: 'key-label', kind: 'list', description: 'CKA_LABEL of the master key(s), newest first' })),
    encoding: z.enum(['raw', 'hex'], { error: 'must be raw or hex' }).optional()
      .meta(meta({ env: ['COAP_PSK_KEY_ENCODING'], flag: 'key-encoding', kind: 'string', description: 'raw (16 bytes) or hex (32 ASCII hex characters)' })),
    masterKeyHex: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_MASTER_KEY_HEX'], kind: 'string', secret: true, description: 'software master key(s), development only; never a flag' })),
    cacheMax: count(0, 10_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_CACHE_MAX'], flag: 'cache-max', kind: 'int', description: 'derived-key cache entries (0: no cache)' })),
    cacheTtlMs: count(0, 86_400_000).optional()
      .meta(meta({ env: ['COAP_PSK_CACHE_TTL_MS'], flag: 'cache-ttl-ms', kind: 'int', description: 'how long a derived key is cached' })),
    cacheNegativeTtlMs: count(0, 86_400_000).optional()
      .meta(meta({ env: ['COAP_PSK_CACHE_NEGATIVE_TTL_MS'], flag: 'cache-negative-ttl-ms', kind: 'int', description: 'how long an unknown identity is remembered' })),
    poolSize: count(1, 256).optional()
      .meta(meta({ env: ['COAP_PSK_POOL_SIZE'], flag: 'pool-size', kind: 'int', description: 'PKCS#11 sessions used in parallel' })),
    allowExtractableKey: z.boolean({ error: 'must be true or false' }).optional()
      .meta(meta({ env: ['COAP_PSK_ALLOW_EXTRACTABLE_KEY'], flag: 'allow-extractable-key', kind: 'bool', description: 'accept a master key that is extractable or not sensitive' })),
    syncDerivation: z.boolean({ error: 'must be true or false' }).optional()
      .meta(meta({ env: ['COAP_PSK_PKCS11_SYNC'], flag: 'pkcs11-sync', kind: 'bool', description: 'derive on the event loop, without the worker-thread hop: for in-process tokens such as SoftHSM, never for a network HSM' })),
    ticketKeyLabel: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_TICKET_KEY_LABEL'], flag: 'ticket-key-label', kind: 'string', description: 'CKA_LABEL of the HSM key that derives session ticket secrets (rotating every ticket lifetime; default: dtls.ticketKeyFile, else a random key per process)' })),
    denyList: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_DENY_LIST'], flag: 'deny-list', kind: 'string', description: 'file of denied serials, one per line (reloaded on SIGHUP)' })),
    softhsmConf: z.string().min(1).optional()
      .meta(meta({ env: ['SOFTHSM2_CONF'], kind: 'string', description: 'SoftHSM configuration file' })),
  }),
  dtls: z.strictObject({
    cipherSuites: z.array(cipherSuite).min(1, 'must name at least one suite').optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_CIPHER_SUITES'], flag: 'cipher-suites', kind: 'list', description: 'cipher suites, most preferred first (IANA or OpenSSL names)' })),
    groups: z.array(z.string().refine((g) => GROUP_IDS[g.toLowerCase()] !== undefined, 'must be x25519 or secp256r1')).min(1).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_GROUPS'], flag: 'groups', kind: 'list', description: 'ECDHE groups, most preferred first' })),
    identityHint: z.string().max(128, 'must be at most 128 characters').optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_IDENTITY_HINT'], flag: 'identity-hint', kind: 'string', description: 'psk_identity_hint (default none)' })),
    requireExtendedMasterSecret: z.boolean({ error: 'must be true or false' }).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_REQUIRE_EMS'], flag: 'require-ems', kind: 'bool', description: 'refuse clients without RFC 7627 extended master secret' })),
    mtu: count(256, 65_535).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MTU'], flag: 'mtu', kind: 'int', description: 'path MTU in bytes (default 1280)' })),
    idleTimeoutMs: count(1000, 7 * 86_400_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_IDLE_TIMEOUT_MS'], flag: 'idle-timeout-ms', kind: 'int', description: 'idle sessions are closed after this' })),
    handshakeTimeoutMs: count(1000, 600_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_HANDSHAKE_TIMEOUT_MS'], flag: 'handshake-timeout-ms', kind: 'int', description: 'unfinished handshakes are dropped after this' })),
    retransmitInitialMs: count(50, 60_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_RETRANSMIT_INITIAL_MS'], flag: 'retransmit-initial-ms', kind: 'int', description: 'first flight retransmission timeout (RFC 6347: 1000)' })),
    retransmitMaxMs: count(50, 600_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_RETRANSMIT_MAX_MS'], flag: 'retransmit-max-ms', kind: 'int', description: 'longest retransmission timeout' })),
    maxRetransmits: count(0, 100).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MAX_RETRANSMITS'], flag: 'max-retransmits', kind: 'int', description: 'retransmissions before a handshake is given up' })),
    maxSessions: count(1, 10_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MAX_SESSIONS'], flag: 'max-sessions', kind: 'int', description: 'established sessions at most' })),
    maxHandshakes: count(1, 10_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MAX_HANDSHAKES'], flag: 'max-handshakes', kind: 'int', description: 'handshakes in progress at most' })),
    maxQueuedRecords: count(1, 1024).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MAX_QUEUED_RECORDS'], flag: 'max-queued-records', kind: 'int', description: 'records queued per handshake during key lookup' })),
    maxReassemblyBytes: count(1024, 1_048_576).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MAX_REASSEMBLY_BYTES'], flag: 'max-reassembly-bytes', kind: 'int', description: 'bytes of partial handshake messages per handshake' })),
    maxIdentityLength: count(128, 65_535).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MAX_IDENTITY_LENGTH'], flag: 'max-identity-length', kind: 'int', description: 'longest PSK identity accepted (RFC 4279: ≥ 128)' })),
    cookieRotationMs: count(1000, 86_400_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_COOKIE_ROTATION_MS'], flag: 'cookie-rotation-ms', kind: 'int', description: 'HelloVerifyRequest cookie secret lifetime' })),
    maxPendingKeyLookups: count(1, 1_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_MAX_PENDING_KEY_LOOKUPS'], flag: 'max-pending-key-lookups', kind: 'int', description: 'HSM derivations waiting at once; past it handshakes are refused' })),
    keyLookupTimeoutMs: count(100, 600_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_KEY_LOOKUP_TIMEOUT_MS'], flag: 'key-lookup-timeout-ms', kind: 'int', description: 'a key lookup slower than this fails its handshake' })),
    handshakeRatePerSource: count(0, 1_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_HANDSHAKE_RATE_PER_SOURCE'], flag: 'handshake-rate-per-source', kind: 'int', description: 'handshakes per second per source address (0: no limit)' })),
    handshakeBurstPerSource: count(1, 1_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_HANDSHAKE_BURST_PER_SOURCE'], flag: 'handshake-burst-per-source', kind: 'int', description: 'burst allowed above the per-source rate' })),
    recvBufferSize: count(65_536, 1 << 30).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_RECV_BUFFER_SIZE'], flag: 'recv-buffer-size', kind: 'int', description: 'UDP receive buffer in bytes' })),
    sendBufferSize: count(65_536, 1 << 30).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_SEND_BUFFER_SIZE'], flag: 'send-buffer-size', kind: 'int', description: 'UDP send buffer in bytes' })),
    cidLength: count(0, 255).refine((n) => n === 0 || n >= 4, 'must be 0 (off) or 4..255').optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_CID_LENGTH'], flag: 'cid-length', kind: 'int', description: 'RFC 9146 Connection ID length in bytes (default 6; 0 turns CID off)' })),
    // The flag is the negation: resumption is on unless --no-resumption (or false elsewhere).
    resumption: z.boolean({ error: 'must be true or false' }).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_RESUMPTION'], flag: 'no-resumption', kind: 'bool', description: 'turn off session resumption (session IDs and tickets; default on)' })),
    ticketLifetimeMs: count(1000, 7 * 86_400_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_TICKET_LIFETIME_MS'], flag: 'ticket-lifetime-ms', kind: 'int', description: 'how long a session ticket or session ID resumes (default 86400000)' })),
    sessionCacheMax: count(0, 10_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_SESSION_CACHE_MAX'], flag: 'session-cache-max', kind: 'int', description: 'sessions kept for resumption by session ID (0: none; default 100000)' })),
    ticketKeyFile: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_DTLS_TICKET_KEY_FILE'], flag: 'ticket-key-file', kind: 'string', description: 'file of ticket key secrets (64 hex characters a line, the first seals); default a random key per process' })),
  }),
  metrics: z.strictObject({
    port: port.optional()
      .meta(meta({ env: ['COAP_PSK_METRICS_PORT'], flag: 'metrics-port', kind: 'int', description: 'HTTP port of /metrics and /healthz (off when unset)' })),
    host: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_METRICS_HOST'], flag: 'metrics-host', kind: 'string', description: 'address of the metrics listener (default 127.0.0.1)' })),
  }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be one of fatal, error, warn, info, debug, trace, silent' }).optional()
      .meta(meta({ env: ['COAP_PSK_LOG_LEVEL'], flag: 'log-level', kind: 'string', description: 'log level (default info)' })),
    format: z.enum(['json', 'pretty'], { error: 'must be json or pretty' }).optional()
      .meta(meta({ env: ['COAP_PSK_LOG_FORMAT'], flag: 'log-format', kind: 'string', description: 'json or pretty (default: pretty on a terminal, json otherwise)' })),
  }),
  keylog: z.strictObject({
    file: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_KEYLOG', 'SSLKEYLOGFILE'], flag: 'keylog', kind: 'string', description: 'append NSS key log lines (CLIENT_RANDOM) here: decrypts captures, lab only' })),
  }),
  coap: z.strictObject({
    replyCacheBytes: count(0, 4 * 1024 ** 3).optional()
      .meta(meta({ env: ['COAP_PSK_COAP_REPLY_CACHE_BYTES'], flag: 'reply-cache-bytes', kind: 'int', description: 'bytes of replies kept for duplicate detection, all sessions (default 16777216)' })),
    replyCacheEntries: count(0, 10_000_000).optional()
      .meta(meta({ env: ['COAP_PSK_COAP_REPLY_CACHE_ENTRIES'], flag: 'reply-cache-entries', kind: 'int', description: 'deprecated: reply-cache-bytes = 400 × this, when reply-cache-bytes is not set' })),
    maxObserveRelations: count(0, 100_000).optional()
      .meta(meta({ env: ['COAP_PSK_COAP_MAX_OBSERVE_RELATIONS'], flag: 'max-observe-relations', kind: 'int', description: 'Observe relations per DTLS session (default 16)' })),
    maxBlock1Body: count(0, 64 * 1024 * 1024).optional()
      .meta(meta({ env: ['COAP_PSK_COAP_MAX_BLOCK1_BODY'], flag: 'max-block1-body', kind: 'int', description: 'largest Block1 upload body in bytes, 4.13 past it (default 1048576)' })),
  }),
  routes: z.strictObject({
    file: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_ROUTES'], flag: 'routes', kind: 'string', description: 'module whose default export mounts routes' })),
  }),
  identity: z.strictObject({
    pattern: identityPattern.optional()
      .meta(meta({ env: ['COAP_PSK_IDENTITY_PATTERN'], flag: 'identity-pattern', kind: 'string', description: 'regex with a named group serial, e.g. ^(?<tenant>[^/]+)/(?<serial>.+)$' })),
  }),
  // CID forwarding between nodes (docs/cluster.md): on when cluster.port is set.
  cluster: z.strictObject({
    nodeId: count(0, MAX_NODE_ID).optional()
      .meta(meta({ env: ['COAP_PSK_CLUSTER_NODE_ID'], flag: 'node-id', kind: 'int', description: `this node's id in the Connection ID, 0..${MAX_NODE_ID} (default: the ordinal of a StatefulSet hostname such as coap-psk-2)` })),
    port: count(1, 65535).optional()
      .meta(meta({ env: ['COAP_PSK_CLUSTER_PORT'], flag: 'cluster-port', kind: 'int', description: 'internal UDP port where nodes forward records to the node owning their session; set: cluster on (needs a node id and cluster.keyFile; up to 63 workers)' })),
    keyFile: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_CLUSTER_KEY_FILE'], flag: 'cluster-key-file', kind: 'string', description: 'file holding the cluster key, the same on every node (at least 32 random bytes, or 64 hex digits)' })),
    peers: clusterPeers.optional()
      .meta(meta({ env: ['COAP_PSK_CLUSTER_PEERS'], flag: 'cluster-peers', kind: 'list', description: 'the other nodes, id=host:port,... (their cluster ports)' })),
    dns: z.string().min(1).optional()
      .meta(meta({ env: ['COAP_PSK_CLUSTER_DNS'], flag: 'cluster-dns', kind: 'string', description: 'a DNS name listing the nodes (a headless Service), resolved every 5 s; peers found there announce their ids' })),
    // The flag is the negation: replies go back through the receiving node unless --no-cluster-backward.
    backward: z.boolean({ error: 'must be true or false' }).optional()
      .meta(meta({ env: ['COAP_PSK_CLUSTER_BACKWARD'], flag: 'no-cluster-backward', kind: 'bool', description: 'send replies to forwarded records directly from this node (direct server return) instead of back through the node that received them (default: back, for load balancers that NAT)' })),
  }),
});

export type ServeConfig = z.infer<typeof configSchema>;
export type SectionName = keyof ServeConfig;

export interface SettingInfo extends SettingMeta {
  /** e.g. ['dtls', 'mtu']. */
  path: [SectionName, string];
}

/** Every leaf of the schema with its metadata, in schema order. */
export function settings(): SettingInfo[] {
  const out: SettingInfo[] = [];
  for (const [section, sectionSchema] of Object.entries(configSchema.shape)) {
    for (const [key, leaf] of Object.entries((sectionSchema as z.ZodObject).shape)) {
      const m = (leaf as z.ZodType).meta() as unknown as SettingMeta | undefined;
      if (!m) throw new Error(`config schema: ${section}.${key} has no metadata`);
      out.push({ ...m, path: [section as SectionName, key] });
    }
  }
  return out;
}
