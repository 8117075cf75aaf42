// Proves the pion/dtls v2 test client (test/peers/pion-resume-client/main.go) against libcoap's
// coap-server-openssl, which resumes by session ID, before it is pointed at ours. (Against
// `openssl s_server`, which serves one connection at a time, pion's reconnect timed out here:
// s_server was still in the first connection after pion closed it.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPionResumeClient, pionResumeClient } from '../helpers/pion-resume-client.js';
import { asciiKeyToPskHex, startCoapServerOpenssl, type CoapServer } from '../helpers/peers.js';

// CON GET /time, Message ID 0x1234, no token (RFC 7252 section 3).
const GET_TIME = Buffer.from('40011234b474696d65', 'hex');
const KEY = 'pion-harness-key'; // test key only

describe('pion resume client against coap-server-openssl', () => {
  let server: CoapServer;
  beforeAll(async () => {
    await buildPionResumeClient();
    server = await startCoapServerOpenssl({ key: KEY, lifetimeSec: 120 });
  }, 180_000);
  afterAll(() => server?.stop());

  it('GETs /time, reconnects from a new port and resumes by session ID', async () => {
    const res = await pionResumeClient({ port: server.port, identity: 'SN-pion-1', pskHex: asciiKeyToPskHex(KEY), request: GET_TIME, resume: true });
    expect(res.exitCode, res.stdout + res.stderr).toBe(0);
    expect(res.handshakes.map((h) => [h.ok, h.suite])).toEqual([
      [true, 'TLS_PSK_WITH_AES_128_CCM_8'],
      [true, 'TLS_PSK_WITH_AES_128_CCM_8'],
    ]);
    for (const reply of res.replies) expect(reply!.subarray(0, 4)).toEqual(Buffer.from('60451234', 'hex'));
    expect(res.handshakes[1]!.sessionId).toBe(res.handshakes[0]!.sessionId);
    expect(res).toMatchObject({ resumed: true, offered: 'id' });
  });

  it('fails with a wrong key', async () => {
    const res = await pionResumeClient({ port: server.port, identity: 'SN-pion-1', pskHex: 'ffeeddccbbaa99887766554433221100', clientTimeoutMs: 1000 });
    expect(res.exitCode).toBe(1);
    expect(res.handshakes).toEqual([expect.objectContaining({ ok: false })]);
  });
});
