/**
 * Resumption against the real DTLS server in this process (loopback), with real clients from
 * Debian: openssl s_client (-sess_out/-sess_in, by ticket and by session ID with -no_ticket),
 * gnutls-cli --resume (ticket, and %NO_TICKETS for the session ID), our mbedTLS 2.28 client (by
 * ID, by ticket, a tampered ticket) and our pion/dtls client. A counting PSK lookup proves that a
 * resumed handshake makes no key lookup (so no HSM call); the handshake events say which kind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DtlsServer, type DtlsServerOptions, type HandshakeEvent } from '../../../src/dtls/server.js';
import type { PskRefusal } from '../../../src/dtls/psk.js';
import { deriveSoftware } from '../../../src/keys/derive.js';
import { SoftwareResolver } from '../../../src/keys/software.js';
import { pskLookupFromResolver } from '../../../src/psk-lookup.js';
import { buildMbedtlsClient, mbedtlsClient } from '../../helpers/mbedtls-client.js';
import { GNUTLS_PRIORITY_PSK_CCM8, runBounded } from '../../helpers/peers.js';
import { buildPionResumeClient, pionResumeClient } from '../../helpers/pion-resume-client.js';
import { LOOPBACK } from '../../helpers/ports.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
const keyHex = (serial: string) => deriveSoftware(MASTER, Buffer.from(serial)).toString('hex');

const dir = mkdtempSync(path.join(tmpdir(), 'resumption-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  await Promise.all([buildMbedtlsClient(), buildPionResumeClient()]);
}, 120_000);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(options: Partial<DtlsServerOptions> = {}) {
  const resolver = new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} });
  const inner = pskLookupFromResolver(resolver);
  const lookups: string[] = [];
  const server = new DtlsServer({
    pskLookup: (identity) => {
      lookups.push(identity.toString());
      return inner(identity);
    },
    ...options,
  });
  cleanups.push(() => server.close());
  const { port } = await server.listen(0, LOOPBACK);
  const events: HandshakeEvent[] = [];
  server.on('handshake', (e: HandshakeEvent) => events.push(e));
  return { server, port, lookups, events, kinds: () => events.map((e) => (e.result === 'ok' ? e.kind : `failed:${e.reason}`)) };
}

async function sClient(port: number, serial: string, args: string[]) {
  const res = await runBounded('openssl', [
    's_client', '-dtls1_2', '-connect', `${LOOPBACK}:${port}`, '-psk_identity', serial,
    '-psk', keyHex(serial), // test key only
    '-cipher', 'PSK-AES128-CCM8', ...args,
  ], { timeoutMs: 10_000 });
  return { ...res, reused: /^Reused, /m.test(res.stdout), fresh: /^New, /m.test(res.stdout) };
}

function gnutlsResume(port: number, serial: string, priority = GNUTLS_PRIORITY_PSK_CCM8) {
  return runBounded('gnutls-cli', [
    '--udp', '--port', String(port), '--pskusername', serial,
    '--pskkey', keyHex(serial), // test key only
    '--priority', priority, '--resume', LOOPBACK,
  ], { timeoutMs: 15_000 });
}

describe('openssl s_client', () => {
  it('resumes by ticket with -sess_out / -sess_in, without a key lookup', async () => {
    const s = await start();
    const sess = path.join(dir, 'ticket.pem');
    const first = await sClient(s.port, 'SN-ossl-1', ['-sess_out', sess]);
    expect(first.fresh, first.stdout + first.stderr).toBe(true);
    const second = await sClient(s.port, 'SN-ossl-1', ['-sess_in', sess]);
    expect(second.reused, second.stdout + second.stderr).toBe(true);
    expect(s.kinds()).toEqual(['full', 'resumed_ticket']);
    expect(s.lookups).toEqual(['SN-ossl-1']);
    expect(s.events[1]).toMatchObject({ identity: 'SN-ossl-1', pskTag: 'k' });
  }, 30_000);

  it('resumes by session ID with -no_ticket', async () => {
    const s = await start();
    const sess = path.join(dir, 'id.pem');
    expect((await sClient(s.port, 'SN-ossl-2', ['-no_ticket', '-sess_out', sess])).fresh).toBe(true);
    const second = await sClient(s.port, 'SN-ossl-2', ['-no_ticket', '-sess_in', sess]);
    expect(second.reused, second.stdout).toBe(true);
    expect(s.kinds()).toEqual(['full', 'resumed_id']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);

  it('resumes on -reconnect', async () => {
    const s = await start();
    const res = await sClient(s.port, 'SN-ossl-3', ['-reconnect']);
    expect(res.stdout.match(/^Reused, /gm)?.length ?? 0, res.stdout + res.stderr).toBeGreaterThanOrEqual(5);
    expect(s.kinds()[0]).toBe('full');
    expect(s.kinds().slice(1).every((k) => k === 'resumed_ticket')).toBe(true);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);
});

describe('gnutls-cli --resume', () => {
  it('resumes by ticket', async () => {
    const s = await start();
    const res = await gnutlsResume(s.port, 'SN-gnutls-1');
    expect(res.stdout, res.stdout + res.stderr).toMatch(/This is a resumed session/);
    expect(s.kinds()).toEqual(['full', 'resumed_ticket']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);

  it('resumes by session ID with %NO_TICKETS', async () => {
    const s = await start();
    const res = await gnutlsResume(s.port, 'SN-gnutls-2', `${GNUTLS_PRIORITY_PSK_CCM8}:%NO_TICKETS`);
    expect(res.stdout, res.stdout + res.stderr).toMatch(/This is a resumed session/);
    expect(s.kinds()).toEqual(['full', 'resumed_id']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);
});
