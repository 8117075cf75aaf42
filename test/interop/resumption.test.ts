/**
 * Resumption against the real server process (`coap-psk serve` on a SoftHSM token, as in
 * fixture.ts) with Debian's clients: openssl s_client -sess_out/-sess_in (ticket, and session ID
 * with -no_ticket) and -reconnect, gnutls-cli --resume, our mbedTLS 2.28 and pion/dtls clients.
 * The server's own metrics prove that resumed handshakes make no key lookup (no HSM call); a
 * serial denied after its ticket was issued cannot resume; with --no-resumption a ticket that
 * another server issued gets a full handshake.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMbedtlsClient, mbedtlsClient } from '../helpers/mbedtls-client.js';
import { GNUTLS_PRIORITY_PSK_CCM8 } from '../helpers/peers.js';
import { gnutlsResume, sClientSession } from '../helpers/resume-clients.js';
import { buildPionResumeClient, pionResumeClient } from '../helpers/pion-resume-client.js';
import { freePortPair, LOOPBACK } from '../helpers/ports.js';
import { sample } from '../helpers/prometheus.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken, TEST_KEY_LABEL, TEST_MASTER_HEX } from './fixture.js';
import { runCli } from '../cli/run.js';

const dir = mkdtempSync(path.join(tmpdir(), 'resumption-interop-'));
const denyList = path.join(dir, 'denied.txt');
let token: TestToken;
let server: ServerProcess;
let off: ServerProcess;
let metricsPort: number;

beforeAll(async () => {
  writeFileSync(denyList, '');
  metricsPort = await freePortPair();
  token = await makeToken('resumption');
  [server, off] = await Promise.all([
    startServerProcess(token.env, ['--metrics-port', String(metricsPort), '--deny-list', denyList, '--log-format', 'json']),
    startServerProcess(token.env, ['--no-resumption', '--log-format', 'json']),
    buildMbedtlsClient(),
    buildPionResumeClient(),
  ]) as [ServerProcess, ServerProcess, ...unknown[]];
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await off?.stop();
  await token?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function metric(name: string, labels?: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://${LOOPBACK}:${metricsPort}/metrics`)).text();
  return sample(text, name, labels) ?? 0;
}

const sClient = (port: number, serial: string, args: string[]) => sClientSession(port, serial, expectedHexKey(serial), args);

describe('coap-psk serve resumes', () => {
  it('openssl s_client by ticket and by session ID, without a key lookup', async () => {
    const lookups = await metric('coap_psk_key_lookups_total');
    const ticket = path.join(dir, 't.pem');
    const id = path.join(dir, 'id.pem');
    expect((await sClient(server.port, 'SN-R1', ['-sess_out', ticket])).fresh).toBe(1);
    expect((await sClient(server.port, 'SN-R1', ['-no_ticket', '-sess_out', id])).fresh).toBe(1);
    const byTicket = await sClient(server.port, 'SN-R1', ['-sess_in', ticket]);
    expect(byTicket.reused, byTicket.stdout + byTicket.stderr).toBe(1);
    const byId = await sClient(server.port, 'SN-R1', ['-no_ticket', '-sess_in', id]);
    expect(byId.reused, byId.stdout + byId.stderr).toBe(1);
    expect(await metric('coap_psk_key_lookups_total')).toBe(lookups + 2);
    const log = await server.waitForLog('"kind":"resumed_id"');
    expect(log).toMatch(/"identity":"SN-R1".*"kind":"resumed_ticket".*"msg":"session resumed"|"msg":"session resumed".*"kind":"resumed_ticket"/);
  }, 40_000);

  it('openssl s_client -reconnect: five resumptions, one key lookup', async () => {
    const lookups = await metric('coap_psk_key_lookups_total');
    const resumed = await metric('coap_psk_handshakes_by_kind_total', { kind: 'resumed_ticket' });
    const res = await sClient(server.port, 'SN-R2', ['-reconnect']);
    expect(res.fresh, res.stdout + res.stderr).toBe(1);
    expect(res.reused).toBe(5);
    expect(await metric('coap_psk_key_lookups_total')).toBe(lookups + 1);
    expect(await metric('coap_psk_handshakes_by_kind_total', { kind: 'resumed_ticket' })).toBe(resumed + 5);
  }, 40_000);

  it('gnutls-cli --resume, by ticket and with %NO_TICKETS by session ID', async () => {
    const lookups = await metric('coap_psk_key_lookups_total');
    for (const priority of [GNUTLS_PRIORITY_PSK_CCM8, `${GNUTLS_PRIORITY_PSK_CCM8}:%NO_TICKETS`]) {
      const res = await gnutlsResume(server.port, 'SN-R3', expectedHexKey('SN-R3'), priority);
      expect(res.resumed, priority + res.stdout + res.stderr).toBe(true);
    }
    expect(await metric('coap_psk_key_lookups_total')).toBe(lookups + 2);
  }, 40_000);

  it('the mbedTLS client by ID and by ticket, a tampered ticket gets a full handshake; pion by ID', async () => {
    const base = { port: server.port, identity: 'SN-R4', pskHex: expectedHexKey('SN-R4') };
    const lookups = await metric('coap_psk_key_lookups_total');
    expect(await mbedtlsClient({ ...base, resume: 'id' })).toMatchObject({ resumed: true, offered: 'id' });
    expect(await mbedtlsClient({ ...base, resume: 'ticket' })).toMatchObject({ resumed: true, offered: 'ticket' });
    expect(await pionResumeClient({ ...base, resume: true })).toMatchObject({ resumed: true });
    expect(await metric('coap_psk_key_lookups_total')).toBe(lookups + 3);
    const tampered = await mbedtlsClient({ ...base, resume: 'ticket', tamperTicket: true });
    expect(tampered.handshakes.map((h) => h.ok)).toEqual([true, true]);
    expect(tampered).toMatchObject({ resumed: false, offered: 'ticket' });
    expect(await metric('coap_psk_key_lookups_total')).toBe(lookups + 5);
  }, 60_000);

  it('a serial denied after its ticket was issued cannot resume', async () => {
    const ticket = path.join(dir, 'denied.pem');
    expect((await sClient(server.port, 'SN-R5', ['-sess_out', ticket])).fresh).toBe(1);
    writeFileSync(denyList, 'SN-R5\n');
    server.child.kill('SIGHUP');
    await server.waitForLog('deny list reloaded');
    const res = await sClient(server.port, 'SN-R5', ['-sess_in', ticket]);
    expect(res.reused, res.stdout + res.stderr).toBe(0);
    expect(await server.waitForLog('"reason":"identity_denied"')).toMatch(/"identity":"SN-R5"[^\n]*"reason":"identity_denied"/);
  }, 40_000);
});

describe('coap-psk serve --no-resumption', () => {
  it('gives full handshakes to clients that offer a ticket or a session ID', async () => {
    const foreign = path.join(dir, 'foreign.pem');
    expect((await sClient(server.port, 'SN-R6', ['-sess_out', foreign])).fresh).toBe(1);
    const res = await sClient(off.port, 'SN-R6', ['-sess_in', foreign]);
    expect(res.fresh, res.stdout + res.stderr).toBe(1);
    expect(res.reused).toBe(0);
    const mbed = await mbedtlsClient({ port: off.port, identity: 'SN-R6', pskHex: expectedHexKey('SN-R6'), resume: 'ticket' });
    expect(mbed.handshakes.map((h) => h.ok)).toEqual([true, true]);
    expect(mbed.handshakes[0]!.ticket).toBe(false);
    expect(mbed.resumed).toBe(false);
    expect(off.log()).not.toMatch(/session resumed/);
  }, 40_000);
});

describe('tickets from the HSM ticket key (keys.ticketKeyLabel)', () => {
  const TICKET_KEY = { label: 'psk-ticket', hex: '0f0e0d0c0b0a09080706050403020100' }; // test key only
  let hsmToken: TestToken;
  let nodeA: ServerProcess;
  let nodeB: ServerProcess;
  beforeAll(async () => {
    hsmToken = await makeToken('resumption-hsm', [{ label: TEST_KEY_LABEL, hex: TEST_MASTER_HEX }, TICKET_KEY]);
    // One after the other: two SoftHSM processes opening a fresh token at the same moment, one
    // once found no token of that label (CI, 2026-12-02).
    nodeA = await startServerProcess(hsmToken.env, ['--ticket-key-label', TICKET_KEY.label, '--log-format', 'json']);
    nodeB = await startServerProcess({ ...hsmToken.env, COAP_PSK_TICKET_KEY_LABEL: TICKET_KEY.label }, ['--log-format', 'json']);
  }, 60_000);
  afterAll(async () => {
    await nodeA?.stop();
    await nodeB?.stop();
    await hsmToken?.cleanup();
  });

  it('a ticket one server issued resumes on another that holds the same HSM key, not on one without it', async () => {
    const ticket = path.join(dir, 'node-a.pem');
    expect((await sClient(nodeA.port, 'SN-R7', ['-sess_out', ticket])).fresh).toBe(1);
    const onB = await sClient(nodeB.port, 'SN-R7', ['-sess_in', ticket]);
    expect(onB.reused, onB.stdout + onB.stderr).toBe(1);
    expect(await nodeB.waitForLog('session resumed')).toMatch(/"identity":"SN-R7"[^\n]*"kind":"resumed_ticket"/);
    // The first test server's ticket keys are random: it cannot open node A's ticket.
    const elsewhere = await sClient(server.port, 'SN-R7', ['-sess_in', ticket]);
    expect(elsewhere.fresh, elsewhere.stdout + elsewhere.stderr).toBe(1);
  }, 40_000);

  it('an unknown ticket key label fails the start with one line naming the setting', async () => {
    const res = await runCli(['serve', '--port', '0', '--ticket-key-label', 'no-such-key'], { ...hsmToken.env, COAP_PSK_LOG_LEVEL: 'error' });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/config keys\.ticketKeyLabel: PKCS#11 key not found: label no-such-key/);
  }, 30_000);
});
