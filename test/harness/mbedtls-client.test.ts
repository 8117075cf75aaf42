// Proves the mbedTLS 2.28 test client (test/peers/mbedtls-client/client.c) against reference
// servers that resume (OpenSSL s_server; libcoap's coap-server-openssl) before it is pointed at
// ours: full handshakes, resumption by session ID and by ticket, a tampered ticket falling back
// to a full handshake, and a wrong key failing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMbedtlsClient, mbedtlsClient, startOpensslSServer, type SServer } from '../helpers/mbedtls-client.js';
import { asciiKeyToPskHex, startCoapServerOpenssl, type CoapServer } from '../helpers/peers.js';

const KEY_HEX = '00112233445566778899aabbccddeeff'; // test key only
// CON GET /time, Message ID 0x1234, no token (RFC 7252 section 3).
const GET_TIME = Buffer.from('40011234b474696d65', 'hex');

beforeAll(async () => {
  await buildMbedtlsClient();
}, 60_000);

describe('mbedTLS client against openssl s_server', () => {
  let server: SServer;
  beforeAll(async () => {
    server = await startOpensslSServer({ pskHex: KEY_HEX });
  });
  afterAll(() => server?.stop());

  const base = () => ({ port: server.port, identity: 'SN-mbedtls-1', pskHex: KEY_HEX });

  it('completes a PSK handshake', async () => {
    const res = await mbedtlsClient(base());
    expect(res.exitCode, res.stdout + res.stderr).toBe(0);
    expect(res.handshakes).toEqual([expect.objectContaining({ ok: true, suite: 'TLS-PSK-WITH-AES-128-CCM-8', ticket: true })]);
    expect(res.resumed).toBeUndefined();
  });

  it('resumes by ticket', async () => {
    const res = await mbedtlsClient({ ...base(), resume: 'ticket' });
    expect(res.handshakes.map((h) => h.ok)).toEqual([true, true]);
    expect(res).toMatchObject({ resumed: true, offered: 'ticket' });
  });

  it('resumes by session ID with tickets off', async () => {
    const res = await mbedtlsClient({ ...base(), resume: 'id' });
    expect(res.handshakes.map((h) => h.ok)).toEqual([true, true]);
    expect(res.handshakes[0]!.sessionId).toMatch(/^[0-9a-f]{64}$/);
    expect(res.handshakes[1]!.sessionId).toBe(res.handshakes[0]!.sessionId);
    expect(res).toMatchObject({ resumed: true, offered: 'id' });
  });

  it('falls back to a full handshake with a tampered ticket', async () => {
    const res = await mbedtlsClient({ ...base(), resume: 'ticket', tamperTicket: true });
    expect(res.handshakes.map((h) => h.ok)).toEqual([true, true]);
    expect(res).toMatchObject({ resumed: false, offered: 'ticket' });
  });

  it('fails with a wrong key', async () => {
    const res = await mbedtlsClient({ ...base(), pskHex: 'ffeeddccbbaa99887766554433221100', clientTimeoutMs: 1000 });
    expect(res.exitCode).toBe(1);
    expect(res.handshakes).toEqual([expect.objectContaining({ ok: false })]);
  });
});

describe('mbedTLS client against coap-server-openssl', () => {
  let server: CoapServer;
  const key = 'mbedtls-harness-key';
  beforeAll(async () => {
    server = await startCoapServerOpenssl({ key, lifetimeSec: 120 });
  });
  afterAll(() => server?.stop());

  it('GETs /time on each connection and resumes by ticket', async () => {
    const res = await mbedtlsClient({
      port: server.port, identity: 'SN-mbedtls-2', pskHex: asciiKeyToPskHex(key), request: GET_TIME, resume: 'ticket',
    });
    expect(res.exitCode, res.stdout + res.stderr).toBe(0);
    expect(res.replies).toHaveLength(2);
    for (const reply of res.replies) {
      // ACK (0x60), 2.05 Content (0x45), the request's Message ID.
      expect(reply!.subarray(0, 4)).toEqual(Buffer.from('60451234', 'hex'));
    }
    expect(res.resumed).toBe(true);
  });
});
