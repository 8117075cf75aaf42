/**
 * pion/dtls (Debian's golang-github-pion-dtls.v2-dev) against the real server process on a real
 * SoftHSM token. At MTU 100 pion fragments its ClientHello (issue 11 defect 5); the server must
 * reassemble it (bounded, before the cookie) and complete the handshake.
 */
import { describe, expect, it } from 'vitest';
import { pionAvailable, pionClient } from '../helpers/pion.js';
import { expectedPsk, serverOnTestToken } from './fixture.js';

describe.skipIf(!pionAvailable)('pion/dtls client', () => {
  const ctx = serverOnTestToken('interop-pion', { COAP_PSK_KEY_ENCODING: 'raw' });

  it.each([1200, 100])('at MTU %i completes the handshake and gets /whoami', async (mtu) => {
    const serial = `SN-pion-${mtu}`;
    const res = await pionClient({ port: ctx.server.port, identity: serial, pskHex: expectedPsk(serial).toString('hex'), mtu, get: 'whoami' });
    expect(res.handshakeOk, res.stderr).toBe(true);
    expect(res.code).toBe('2.05');
    expect(res.payload).toBe(serial);
  }, 60_000);
});
