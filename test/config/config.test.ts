/**
 * The serve configuration: one schema for file, environment and flags; precedence
 * flags > environment > file > defaults; one-line errors naming the field; --print-config with
 * secrets masked. The CLI cases run the real binary.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { printableConfig, resolveConfig, settings } from '../../src/config/index.js';
import { UserError } from '../../src/errors.js';
import { runCli } from '../cli/run.js';

let dir: string;
const SOFTWARE = { COAP_PSK_MASTER_KEY_HEX: '00112233445566778899aabbccddeeff' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('precedence', () => {
  it('flags > environment > file > defaults, setting by setting', async () => {
    const yaml = await file('p.yaml', 'listener:\n  host: 127.0.0.2\n  port: 6000\ndtls:\n  mtu: 1000\n  maxSessions: 7\nmetrics:\n  port: 9000\n');
    const c = resolveConfig({
      file: yaml,
      env: { ...SOFTWARE, COAP_PSK_PORT: '6001', COAP_PSK_DTLS_MTU: '1100', COAP_PSK_METRICS_PORT: '9001' },
      flags: { mtu: '1200' },
    });
    expect(c.listener).toEqual({ host: '127.0.0.2', port: 6001 }); // host from file, port from env
    expect(c.dtls.mtu).toBe(1200); // flag over env over file
    expect(c.dtls.maxSessions).toBe(7); // file only
    expect(c.dtls.idleTimeoutMs).toBeUndefined(); // not set: the DtlsServer default applies
    expect(c.metrics).toEqual({ port: 9001, host: '127.0.0.1' });
    expect(c.origins.get('dtls.mtu')).toBe('--mtu');
    expect(c.origins.get('listener.port')).toBe('COAP_PSK_PORT');
    expect(c.origins.get('listener.host')).toBe(yaml);
  });

  it('defaults when nothing is set', () => {
    const c = resolveConfig({ env: SOFTWARE, stderrIsTTY: false });
    expect(c.listener).toEqual({ host: '0.0.0.0', port: 5684 });
    expect(c.metrics.port).toBeUndefined();
    expect(c.log).toEqual({ level: 'info', format: 'json' });
    expect(c.keylog).toBeUndefined();
  });

  it('reads JSON as well as YAML, and key settings reach loadKeyConfig', async () => {
    const json = await file('k.json', JSON.stringify({ keys: { tokenLabel: 'factory', pinFile: '/run/pin', keyLabels: ['k2', 'k1'], encoding: 'hex', cacheMax: 0 } }));
    const c = resolveConfig({ file: json, env: {} });
    expect(c.keys).toMatchObject({ mode: 'pkcs11', tokenLabel: 'factory', pinFile: '/run/pin', keyLabels: ['k2', 'k1'], encoding: 'hex' });
    expect(c.keys.cache.enabled).toBe(false);
    // The environment still wins over the file for keys too.
    expect(resolveConfig({ file: json, env: { COAP_PSK_KEY_LABEL: 'k3' } }).keys).toMatchObject({ keyLabels: ['k3'] });
  });

  it('takes cipher suites by IANA name, OpenSSL name or value, and groups by name', () => {
    const c = resolveConfig({ env: { ...SOFTWARE, COAP_PSK_DTLS_CIPHER_SUITES: 'PSK-AES128-CCM8, TLS_PSK_WITH_AES_128_GCM_SHA256,0xC0A4' }, flags: { groups: 'secp256r1' } });
    expect(c.dtls.cipherSuites).toEqual([0xc0a8, 0x00a8, 0xc0a4]);
    expect(c.dtls.groups).toEqual([23]);
  });

  it('sizes the CoAP reply cache from a flag or the environment; unset leaves the default', () => {
    expect(resolveConfig({ env: SOFTWARE }).replyCacheEntries).toBeUndefined();
    expect(resolveConfig({ env: { ...SOFTWARE, COAP_PSK_COAP_REPLY_CACHE_ENTRIES: '5000' } }).replyCacheEntries).toBe(5000);
    expect(resolveConfig({ env: SOFTWARE, flags: { replyCacheEntries: '20000' } }).coap.replyCacheBytes).toBe(20000 * 400);
  });

  it('SSLKEYLOGFILE turns the key log on; COAP_PSK_KEYLOG wins over it', () => {
    expect(resolveConfig({ env: { ...SOFTWARE, SSLKEYLOGFILE: '/tmp/a' } }).keylog).toBe('/tmp/a');
    expect(resolveConfig({ env: { ...SOFTWARE, SSLKEYLOGFILE: '/tmp/a', COAP_PSK_KEYLOG: '/tmp/b' } }).keylog).toBe('/tmp/b');
  });
});

describe('errors: one line naming the field and where the value came from', () => {
  it.each([
    [{ flags: { mtu: '100' } }, 'config dtls.mtu (--mtu): must be ≥ 256'],
    [{ env: { COAP_PSK_DTLS_MTU: 'big' } }, 'config dtls.mtu (COAP_PSK_DTLS_MTU): must be a number'],
    [{ env: { COAP_PSK_PORT: '70000' } }, 'config listener.port (COAP_PSK_PORT): must be ≤ 65535'],
    [{ env: { COAP_PSK_LOG_LEVEL: 'loud' } }, 'config log.level (COAP_PSK_LOG_LEVEL): must be one of'],
    [{ flags: { cipherSuites: 'RC4' } }, 'config dtls.cipherSuites (--cipher-suites): unknown cipher suite "RC4"'],
    [{ flags: { identityPattern: '^(.+)$' } }, 'config identity.pattern (--identity-pattern): must have a named group (?<serial>...)'],
    [{ flags: { identityPattern: '^(?<serial>[$' } }, 'config identity.pattern (--identity-pattern): is not a valid regular expression'],
    [{ flags: { requireEms: true, keyEncoding: 'base64' } }, 'config keys.encoding (--key-encoding): must be raw or hex'],
    [{ env: { COAP_PSK_COAP_REPLY_CACHE_ENTRIES: '-1' } }, 'config coap.replyCacheEntries (COAP_PSK_COAP_REPLY_CACHE_ENTRIES): must be ≥ 0'],
  ])('%j', (sources, message) => {
    expect(failure(() => resolveConfig({ env: { ...SOFTWARE, ...(sources as { env?: object }).env }, flags: (sources as { flags?: Record<string, string> }).flags }))).toContain(message);
  });

  it('names the file and the field for a bad value or an unknown field in the file', async () => {
    const bad = await file('bad.yaml', 'dtls:\n  mtu: 100\n');
    expect(failure(() => resolveConfig({ file: bad, env: SOFTWARE }))).toBe(`config dtls.mtu (${bad}): must be ≥ 256`);
    const typo = await file('typo.yaml', 'dtls:\n  mut: 1400\n');
    expect(failure(() => resolveConfig({ file: typo, env: SOFTWARE }))).toMatch(/^config dtls: unknown field "mut" \(known: .*mtu/);
    const section = await file('section.yaml', 'tls:\n  mtu: 1400\n');
    expect(failure(() => resolveConfig({ file: section, env: SOFTWARE }))).toContain('config tls');
    const broken = await file('broken.yaml', 'dtls: [\n');
    expect(failure(() => resolveConfig({ file: broken, env: SOFTWARE }))).toMatch(/^config file .*broken.yaml: not valid YAML/);
    expect(failure(() => resolveConfig({ file: join(dir, 'missing.yaml'), env: SOFTWARE }))).toMatch(/cannot be read \(ENOENT\)/);
  });

  it("rewords loadKeyConfig's messages to name the config field", async () => {
    const f = await file('pin.yaml', 'keys:\n  pinFile: /run/pin\n');
    expect(failure(() => resolveConfig({ file: f, env: {} }))).toBe(
      'config keys.tokenLabel (COAP_PSK_TOKEN_LABEL) is not set (the label of the token that holds the master key)',
    );
  });
});

describe('key settings from a file are reported as the file\'s fields (issue 16, item 13)', () => {
  it('a PIN file that cannot be read names keys.pinFile and the file it came from', async () => {
    const f = await file('pinfile.yaml', 'keys:\n  tokenLabel: t\n  pinFile: /no/such/pin\n');
    const r = await runCli(['derive', '--config', f, 'SN1'], { COAP_PSK_PIN_FILE: undefined, COAP_PSK_PIN: undefined, COAP_PSK_TOKEN_LABEL: undefined, COAP_PSK_PKCS11_MODULE: undefined });
    expect(r.stderr).toBe(`coap-psk: config keys.pinFile (${f}) cannot be read: /no/such/pin (ENOENT)\n`);
  });

  it('pin: 1234 in YAML says to quote it, without repeating the value', async () => {
    const f = await file('pin-number.yaml', 'keys:\n  tokenLabel: t\n  pin: 97531\n');
    const message = failure(() => resolveConfig({ file: f, env: {} }));
    expect(message).toBe(`config keys.pin (${f}): must be text: in YAML, put the value in quotes (e.g. pin: "0123")`);
    expect(message).not.toContain('97531');
  });

  it('SoftHSM settings without SOFTHSM2_CONF: the token-not-found error says where SoftHSM looked', async () => {
    const r = await runCli(['derive', 'SN1'], { SOFTHSM2_CONF: undefined, COAP_PSK_TOKEN_LABEL: 'coap-psk-dev', COAP_PSK_PIN: '1234', COAP_PSK_PKCS11_MODULE: undefined, COAP_PSK_PIN_FILE: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^coap-psk: PKCS#11 token not found: label coap-psk-dev \(SOFTHSM2_CONF is not set, so SoftHSM looks in its system-wide token store; the development token's is .*\.dev\/softhsm2\.conf\)\n$/);
  });
});

describe('defaults shown as they apply (issue 16, items 1 and 14)', () => {
  it('log format: pretty when the logs go to a terminal, JSON otherwise, unless set', () => {
    expect(resolveConfig({ env: SOFTWARE, stderrIsTTY: true }).log.format).toBe('pretty');
    expect(resolveConfig({ env: SOFTWARE, stderrIsTTY: false }).log.format).toBe('json');
    expect(resolveConfig({ env: { ...SOFTWARE, COAP_PSK_LOG_FORMAT: 'json' }, stderrIsTTY: true }).log.format).toBe('json');
  });

  it('--print-config shows the reply cache size in effect; --config help lists every section', async () => {
    // The effective bounds, not null: 32 MiB of replies, 16 relations per session, 1 MiB bodies.
    expect(printableConfig(resolveConfig({ env: SOFTWARE })).coap).toEqual({
      replyCacheBytes: 16 * 1024 * 1024, replyCacheEntries: null, maxObserveRelations: 16, maxBlock1Body: 1024 * 1024,
    });
    const help = await runCli(['serve', '--help'], {});
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('sections listener, keys, dtls, metrics, log, keylog, coap, routes, identity');
  });
});

describe('the schema drives flags and environment', () => {
  it('every setting has an environment variable; secrets have no flag', () => {
    for (const s of settings()) {
      expect(s.env?.length, s.path.join('.')).toBeGreaterThan(0);
      if (s.secret) expect(s.flag, s.path.join('.')).toBeUndefined();
    }
    const names = settings().flatMap((s) => s.env ?? []);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('--print-config', () => {
  it('masks the PIN and software master keys', () => {
    const pkcs11 = printableConfig(resolveConfig({ env: { COAP_PSK_TOKEN_LABEL: 't', COAP_PSK_PIN: 'pin-1234' } }));
    expect(JSON.stringify(pkcs11)).not.toContain('pin-1234');
    expect(pkcs11.keys).toMatchObject({ pin: '***', tokenLabel: 't' });
    const software = printableConfig(resolveConfig({ env: SOFTWARE }));
    expect(JSON.stringify(software)).not.toContain(SOFTWARE.COAP_PSK_MASTER_KEY_HEX);
    expect(software.keys).toMatchObject({ mode: 'software', masterKeyHex: '***' });
  });

  it('prints the effective configuration through the real binary and exits 0', async () => {
    const yaml = await file('cli.yaml', 'dtls:\n  cipherSuites: [PSK-AES128-CCM8]\nidentity:\n  pattern: "^(?<serial>[^@]+)@(?<tenant>.+)$"\n');
    const r = await runCli(['serve', '--print-config', '--config', yaml, '--metrics-port', '9464'], { COAP_PSK_TOKEN_LABEL: 't', COAP_PSK_PIN: 'pin-5678' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('pin-5678');
    const printed = JSON.parse(r.stdout);
    expect(printed.dtls.cipherSuites).toEqual(['TLS_PSK_WITH_AES_128_CCM_8']);
    expect(printed.dtls.mtu).toBe(1280);
    expect(printed.metrics.port).toBe(9464);
    expect(printed.identity.pattern).toBe('^(?<serial>[^@]+)@(?<tenant>.+)$');
    expect(printed.keys.pin).toBe('***');
  });

  it('a bad setting fails the start with one line, no stack trace', async () => {
    const r = await runCli(['serve', '--mtu', '100'], SOFTWARE);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('coap-psk: config dtls.mtu (--mtu): must be ≥ 256\n');
  });
});
