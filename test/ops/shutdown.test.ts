/**
 * Graceful stop of `coap-psk serve`: SIGTERM or SIGINT closes the server once and exits 0,
 * after a client was served; a second signal during the stop does not start another one.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { coapClient } from '../helpers/peers.js';
import { startServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';

let token: TestToken;

beforeAll(async () => {
  token = await makeToken('ops-shutdown');
});
afterAll(async () => {
  await token?.cleanup();
});

it.each(['SIGTERM', 'SIGINT'] as const)('%s: exit 0 after closing', async (signal) => {
  const server = await startServerProcess({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' });
  const res = await coapClient({ impl: 'openssl', identity: 'SN-stop', key: expectedHexKey('SN-stop'), uri: `coaps://127.0.0.1:${server.port}/whoami` });
  expect(res.ok, res.stderr).toBe(true);
  const exited = new Promise<number | null>((done) => server.child.once('exit', (code) => done(code)));
  server.child.kill(signal);
  server.child.kill(signal); // the second one is ignored while the first stop runs
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
  if (code === 'hung') await server.stop();
  expect(code).toBe(0);
  expect(server.log()).toContain('"msg":"shutting down"');
  expect(server.log()).toContain('"msg":"stopped"');
});
