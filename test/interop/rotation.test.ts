/**
 * Master-key rotation without touching devices: the token holds the new and the old master
 * key, COAP_PSK_KEY_LABEL lists them newest first, and devices provisioned under either one
 * connect to the same server. The route handler learns which key matched (req.keyLabel).
 */
import { expect, it } from 'vitest';
import { coapClient } from '../helpers/peers.js';
import { expectedHexKey, serverOnTestToken, TEST_MASTER_HEX } from './fixture.js';

const NEW_MASTER_HEX = 'f0e1d2c3b4a5968778695a4b3c2d1e0f'; // test key only
const ctx = serverOnTestToken(
  'interop-rotation',
  { COAP_PSK_KEY_LABEL: 'master-2026,master-2025', COAP_PSK_KEY_ENCODING: 'hex' },
  ['--routes', 'test/fixtures/routes/key-label.ts'],
  [
    { label: 'master-2026', hex: NEW_MASTER_HEX },
    { label: 'master-2025', hex: TEST_MASTER_HEX },
  ],
);

it.each([
  ['SN-new-device', NEW_MASTER_HEX, 'master-2026'],
  ['SN-old-device', TEST_MASTER_HEX, 'master-2025'],
])('%s, provisioned under one of the keys, connects and is told which', async (serial, masterHex, label) => {
  const res = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial, masterHex), uri: `coaps://127.0.0.1:${ctx.server.port}/key-label` });
  expect(res.responseCode, res.stderr).toBe('2.05');
  expect(res.payload).toBe(`${serial} ${label}`);
});

it('refuses a device whose key comes from neither master key', async () => {
  const serial = 'SN-foreign';
  const res = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial, '0'.repeat(32)), uri: `coaps://127.0.0.1:${ctx.server.port}/key-label`, timeoutSec: 3 });
  expect(res.ok).toBe(false);
});
