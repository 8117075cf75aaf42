/**
 * The resumption settings (issue 13): `dtls.resumption` <-> COAP_PSK_DTLS_RESUMPTION <->
 * --no-resumption (default on), the ticket lifetime, the session cache and the ticket key file;
 * a bad value fails at start with one line naming the setting and never a secret.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { printableConfig, resolveConfig } from '../../src/config/index.js';
import { UserError } from '../../src/errors.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { createServer } from '../../src/server.js';
import { runCli } from '../cli/run.js';

const SOFTWARE = { COAP_PSK_MASTER_KEY_HEX: '00112233445566778899aabbccddeeff' }; // test key only
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-resumption-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('dtls.resumption', () => {
  it('is on by default; the environment, the file and --no-resumption turn it off', async () => {
    expect(printableConfig(resolveConfig({ env: SOFTWARE })).dtls).toMatchObject({ resumption: true, ticketLifetimeMs: 86_400_000, sessionCacheMax: 100_000, ticketKeyFile: null });
    expect(resolveConfig({ env: { ...SOFTWARE, COAP_PSK_DTLS_RESUMPTION: 'false' } }).dtls.resumption).toBe(false);
    const f = join(dir, 'c.json');
    await writeFile(f, JSON.stringify({ dtls: { resumption: false } }));
    expect(resolveConfig({ env: SOFTWARE, file: f }).dtls.resumption).toBe(false);
    // commander gives `resumption: true` for an absent --no-resumption: that must not override.
    expect(resolveConfig({ env: { ...SOFTWARE, COAP_PSK_DTLS_RESUMPTION: 'false' }, flags: { resumption: true } }).dtls.resumption).toBe(false);
    const c = resolveConfig({ env: SOFTWARE, flags: { resumption: false } });
    expect(c.dtls.resumption).toBe(false);
    expect(c.origins.get('dtls.resumption')).toBe('--no-resumption');
    const help = await runCli(['serve', '--help'], {});
    expect(help.stdout).toContain('--no-resumption');
  });

  it('ticket lifetime, session cache and ticket key file', () => {
    const c = resolveConfig({ env: { ...SOFTWARE, COAP_PSK_DTLS_TICKET_LIFETIME_MS: '3600000', COAP_PSK_DTLS_SESSION_CACHE_MAX: '0' }, flags: { ticketKeyFile: '/etc/coap-psk/tickets' } });
    expect(c.dtls).toMatchObject({ ticketLifetimeMs: 3_600_000, sessionCacheMax: 0 });
    expect(c.ticketKeyFile).toBe('/etc/coap-psk/tickets');
    expect(() => resolveConfig({ env: { ...SOFTWARE, COAP_PSK_DTLS_TICKET_LIFETIME_MS: '10' } })).toThrow(/dtls\.ticketLifetimeMs.*COAP_PSK_DTLS_TICKET_LIFETIME_MS.*≥ 1000/);
    const hsm = resolveConfig({ env: { ...SOFTWARE, COAP_PSK_TICKET_KEY_LABEL: 'psk-ticket-2026' } });
    expect(hsm.ticketKeyLabel).toBe('psk-ticket-2026');
    expect(printableConfig(hsm).keys).toMatchObject({ ticketKeyLabel: 'psk-ticket-2026' });
  });

  it('keys.ticketKeyLabel with software keys fails the start with one line', async () => {
    const r = await runCli(['serve', '--port', '0', '--ticket-key-label', 'psk-ticket'], { ...SOFTWARE, COAP_PSK_LOG_LEVEL: 'error' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/config keys\.ticketKeyLabel: needs the PKCS#11 key source/);
  }, 20_000);

  it('a bad ticket key file fails the start with one line naming the setting, not the key', async () => {
    const bad = join(dir, 'tickets');
    const secret = 'ab'.repeat(31); // 62 hex characters: one line short
    await writeFile(bad, `${secret}\n`);
    const keys = new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(SOFTWARE.COAP_PSK_MASTER_KEY_HEX, 'hex') }], encoding: 'raw', warn: () => {} });
    const err = await createServer({ keys, ticketKeyFile: bad }).then(() => undefined, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(UserError);
    expect(err!.message).toBe(`config dtls.ticketKeyFile: ${bad}: line 1: not a 64-hex-character ticket key`);
    const missing = await createServer({ keys, ticketKeyFile: join(dir, 'absent') }).then(() => undefined, (e: unknown) => e as Error);
    expect(missing!.message).toMatch(/^config dtls\.ticketKeyFile: cannot read .*absent \(ENOENT\)$/);
  });
});
