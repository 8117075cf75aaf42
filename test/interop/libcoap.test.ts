/**
 * libcoap's own clients (OpenSSL and GnuTLS builds) against the real server process on a real
 * SoftHSM token, with the hex key encoding that password-style clients use (`-k` is ASCII).
 */
import { describe, expect, it } from 'vitest';
import { coapClient, type CoapImpl } from '../helpers/peers.js';
import { expectedHexKey, serverOnTestToken } from './fixture.js';

const ctx = serverOnTestToken('interop-libcoap', { COAP_PSK_KEY_ENCODING: 'hex' });

// Any serial works: the key is derived, not looked up in a list.
const SERIALS = ['SN12345', 'device-0042', `SN-${Date.now().toString(36)}`];

describe.each<CoapImpl>(['openssl', 'gnutls'])('coap-client-%s', (impl) => {
  it.each(SERIALS)('gets its own serial %s back from /whoami', async (serial) => {
    const res = await coapClient({ impl, identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${ctx.server.port}/whoami` });
    expect(res.responseCode, res.stderr).toBe('2.05');
    expect(res.payload).toBe(serial);
  });

  it('lists the routes in /.well-known/core', async () => {
    const serial = 'SN-core';
    const res = await coapClient({ impl, identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${ctx.server.port}/.well-known/core` });
    expect(res.ok, res.stderr).toBe(true);
    expect(res.payload).toContain('</whoami>');
  });

  it('is refused with the key of another serial', async () => {
    const res = await coapClient({ impl, identity: 'SN12345', key: expectedHexKey('SN54321'), uri: `coaps://127.0.0.1:${ctx.server.port}/whoami`, timeoutSec: 3 });
    expect(res.ok).toBe(false);
    expect(res.payload).toBe('');
  });
});

it('gnutls client limited to TLS_PSK_WITH_AES_128_CCM_8 (the CoAP mandatory suite) works', async () => {
  const serial = 'SN-ccm8';
  const res = await coapClient({ impl: 'gnutls', onlyCcm8: true, identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${ctx.server.port}/whoami` });
  expect(res.ok, res.stderr).toBe(true);
  expect(res.payload).toBe(serial);
  expect(await ctx.server.waitForLog('TLS_PSK_WITH_AES_128_CCM_8')).toContain('TLS_PSK_WITH_AES_128_CCM_8');
});
