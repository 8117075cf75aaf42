/**
 * Resumption against the real DTLS server in this process (loopback), with real clients from
 * Debian: openssl s_client (-sess_out/-sess_in, by ticket and by session ID with -no_ticket),
 * gnutls-cli --resume (ticket, and %NO_TICKETS for the session ID), our mbedTLS 2.28 client (by
 * ID, by ticket, a tampered ticket) and our pion/dtls client. A counting PSK lookup proves that a
 * resumed handshake makes no key lookup (so no HSM call); the handshake events say which kind.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DtlsServer, type DtlsServerOptions, type HandshakeEvent } from '../../../src/dtls/server.js';
import type { PskRefusal } from '../../../src/dtls/psk.js';
import type { DtlsSession } from '../../../src/dtls/session.js';
import { deriveSoftware } from '../../../src/keys/derive.js';
import { SoftwareResolver } from '../../../src/keys/software.js';
import { pskLookupFromResolver } from '../../../src/psk-lookup.js';
import { buildMbedtlsClient, mbedtlsClient } from '../../helpers/mbedtls-client.js';
import { GNUTLS_PRIORITY_PSK_CCM8 } from '../../helpers/peers.js';
import { gnutlsResume, sClientSession } from '../../helpers/resume-clients.js';
import { buildPionResumeClient, pionResumeClient } from '../../helpers/pion-resume-client.js';
import { LOOPBACK } from '../../helpers/ports.js';
import { until } from '../../helpers/wait.js';

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
  const opened: DtlsSession[] = [];
  server.on('session-open', (session: DtlsSession) => opened.push(session));
  return { server, port, lookups, events, opened, kinds: () => events.map((e) => (e.result === 'ok' ? e.kind : `failed:${e.reason}`)) };
}

const sClient = async (port: number, serial: string, args: string[]) => {
  const r = await sClientSession(port, serial, keyHex(serial), args);
  return { ...r, reused: r.reused > 0, fresh: r.fresh > 0 };
};

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
    // The resumed session is the original's identity and key label, and says how it resumed.
    expect(s.opened.map((x) => [x.identityText, x.pskTag, x.resumed])).toEqual([['SN-ossl-1', 'k', undefined], ['SN-ossl-1', 'k', 'ticket']]);
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
    const res = await gnutlsResume(s.port, 'SN-gnutls-1', keyHex('SN-gnutls-1'));
    expect(res.resumed, res.stdout + res.stderr).toBe(true);
    expect(s.kinds()).toEqual(['full', 'resumed_ticket']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);

  it('resumes by session ID with %NO_TICKETS', async () => {
    const s = await start();
    const res = await gnutlsResume(s.port, 'SN-gnutls-2', keyHex('SN-gnutls-2'), `${GNUTLS_PRIORITY_PSK_CCM8}:%NO_TICKETS`);
    expect(res.resumed, res.stdout + res.stderr).toBe(true);
    expect(s.kinds()).toEqual(['full', 'resumed_id']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);
});

describe('our mbedTLS 2.28 client', () => {
  const base = (port: number, serial: string) => ({ port, identity: serial, pskHex: keyHex(serial) });

  it('resumes by session ID', async () => {
    const s = await start();
    const res = await mbedtlsClient({ ...base(s.port, 'SN-mbed-1'), resume: 'id' });
    expect(res.handshakes.map((h) => h.ok), res.stdout + res.stderr).toEqual([true, true]);
    expect(res).toMatchObject({ resumed: true, offered: 'id' });
    expect(res.handshakes[0]!.sessionId).toMatch(/^[0-9a-f]{64}$/);
    expect(s.kinds()).toEqual(['full', 'resumed_id']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);

  it('resumes by ticket', async () => {
    const s = await start();
    const res = await mbedtlsClient({ ...base(s.port, 'SN-mbed-2'), resume: 'ticket' });
    expect(res.handshakes.map((h) => h.ok), res.stdout + res.stderr).toEqual([true, true]);
    expect(res.handshakes[0]!.ticket).toBe(true);
    expect(res).toMatchObject({ resumed: true, offered: 'ticket' });
    expect(s.kinds()).toEqual(['full', 'resumed_ticket']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);

  it('gets a full handshake for a tampered ticket', async () => {
    const s = await start();
    const res = await mbedtlsClient({ ...base(s.port, 'SN-mbed-3'), resume: 'ticket', tamperTicket: true });
    expect(res.handshakes.map((h) => h.ok), res.stdout + res.stderr).toEqual([true, true]);
    expect(res).toMatchObject({ resumed: false, offered: 'ticket' });
    expect(s.kinds()).toEqual(['full', 'full']);
    expect(s.lookups).toHaveLength(2);
  }, 30_000);
});

describe('our pion/dtls client', () => {
  it('resumes by session ID from a new source port', async () => {
    const s = await start();
    const res = await pionResumeClient({ port: s.port, identity: 'SN-pion-1', pskHex: keyHex('SN-pion-1'), resume: true });
    expect(res.handshakes.map((h) => h.ok), res.stdout + res.stderr).toEqual([true, true]);
    expect(res.resumed).toBe(true);
    expect(s.kinds()).toEqual(['full', 'resumed_id']);
    expect(s.lookups).toHaveLength(1);
  }, 30_000);
});

describe('when it does not resume', () => {
  it('an expired ticket or session gets a full handshake', async () => {
    const s = await start({ ticketLifetimeMs: 1000 });
    const ticket = path.join(dir, 'expiring-ticket.pem');
    const id = path.join(dir, 'expiring-id.pem');
    expect((await sClient(s.port, 'SN-exp-1', ['-sess_out', ticket])).fresh).toBe(true);
    expect((await sClient(s.port, 'SN-exp-1', ['-no_ticket', '-sess_out', id])).fresh).toBe(true);
    await new Promise((r) => setTimeout(r, 1200));
    const byTicket = await sClient(s.port, 'SN-exp-1', ['-sess_in', ticket]);
    expect(byTicket.fresh, byTicket.stdout + byTicket.stderr).toBe(true);
    const byId = await sClient(s.port, 'SN-exp-1', ['-no_ticket', '-sess_in', id]);
    expect(byId.fresh, byId.stdout + byId.stderr).toBe(true);
    expect(s.kinds()).toEqual(['full', 'full', 'full', 'full']);
    expect(s.lookups).toHaveLength(4);
  }, 30_000);

  it('with resumption off, tickets and session IDs offered get full handshakes', async () => {
    const s = await start({ resumption: false });
    const ticket = path.join(dir, 'off-ticket.pem');
    const first = await sClient(s.port, 'SN-off-1', ['-sess_out', ticket]);
    expect(first.fresh).toBe(true);
    expect(first.stdout).not.toMatch(/TLS session ticket:/);
    // Neither a session ID nor a ticket: OpenSSL keeps no session it could resume.
    expect(existsSync(ticket)).toBe(false);
    // A ticket and a session ID from a server that resumes, presented to one that does not.
    const other = await start();
    const foreign = path.join(dir, 'foreign-ticket.pem');
    expect((await sClient(other.port, 'SN-off-1', ['-sess_out', foreign])).fresh).toBe(true);
    const offered = await sClient(s.port, 'SN-off-1', ['-sess_in', foreign]);
    expect(offered.fresh, offered.stdout + offered.stderr).toBe(true);
    const mbed = await mbedtlsClient({ port: s.port, identity: 'SN-off-2', pskHex: keyHex('SN-off-2'), resume: 'id' });
    expect(mbed.handshakes.map((h) => h.ok)).toEqual([true, true]);
    expect(mbed.handshakes[0]!.sessionId).toBe('');
    expect(mbed.resumed).toBe(false);
    expect(s.kinds()).toEqual(['full', 'full', 'full', 'full']);
    expect(other.kinds()).toEqual(['full']);
  }, 40_000);

  it('a refused identity cannot resume: full handshake, which the lookup refuses', async () => {
    const denied = new Set<string>();
    const s = await start({ pskRefused: (id): PskRefusal | undefined => (denied.has(id.toString()) ? 'identity_denied' : undefined) });
    const sess = path.join(dir, 'denied.pem');
    expect((await sClient(s.port, 'SN-deny-1', ['-sess_out', sess])).fresh).toBe(true);
    const id = path.join(dir, 'denied-id.pem');
    expect((await sClient(s.port, 'SN-deny-1', ['-no_ticket', '-sess_out', id])).fresh).toBe(true);
    denied.add('SN-deny-1');
    const byTicket = await sClient(s.port, 'SN-deny-1', ['-sess_in', sess]);
    expect(byTicket.reused).toBe(false);
    const byId = await sClient(s.port, 'SN-deny-1', ['-no_ticket', '-sess_in', id]);
    expect(byId.reused).toBe(false);
    // The counting lookup saw both: the resumption fell back to a full handshake's lookup.
    expect(s.lookups).toEqual(['SN-deny-1', 'SN-deny-1', 'SN-deny-1', 'SN-deny-1']);
    expect(s.kinds().slice(0, 2)).toEqual(['full', 'full']);
    expect(s.kinds().slice(2).every((k) => k !== 'resumed_ticket' && k !== 'resumed_id')).toBe(true);
  }, 30_000);
});

describe('while the HSM is backed up', () => {
  it('a full handshake is refused at the key lookup bound, a resumption still goes through', async () => {
    const held: Array<() => void> = [];
    const resolver = new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} });
    const inner = pskLookupFromResolver(resolver);
    // SN-slow's lookups never answer until the test ends: the one allowed lookup stays taken.
    const s = await start({
      maxPendingKeyLookups: 1,
      keyLookupTimeoutMs: 20_000,
      pskLookup: (id) => (id.toString() === 'SN-slow' ? new Promise((resolve) => held.push(() => resolve({ refused: 'unknown_psk_identity' }))) : inner(id)),
    });
    cleanups.push(() => held.forEach((f) => f()));
    const ticket = path.join(dir, 'backlog.pem');
    expect((await sClient(s.port, 'SN-busy-1', ['-sess_out', ticket])).fresh).toBe(true);
    const slow = sClientSession(s.port, 'SN-slow', keyHex('SN-slow'), []);
    await until(() => s.server.pendingKeyLookups === 1, 5000);
    const full = await sClient(s.port, 'SN-busy-2', []);
    expect(full.fresh).toBe(false);
    expect(s.server.stats.dropped.key_lookup_queue_full).toBeGreaterThanOrEqual(1);
    const resumed = await sClient(s.port, 'SN-busy-1', ['-sess_in', ticket]);
    expect(resumed.reused, resumed.stdout + resumed.stderr).toBe(true);
    held.forEach((f) => f());
    await slow;
  }, 40_000);
});
