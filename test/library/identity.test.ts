/**
 * Identity mapping through the library API: the key is derived from the `serial` group of the
 * PSK identity, the other groups reach handlers, identities that do not match are refused.
 * Real token, real coap-client-openssl.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, openKeySource, loadKeyConfig, type CoapPskServer } from '../../src/index.js';
import { coapClient } from '../helpers/peers.js';
import { sample } from '../helpers/prometheus.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';

let token: TestToken;
const servers: CoapPskServer[] = [];

beforeAll(async () => {
  token = await makeToken('library-identity');
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await token?.cleanup();
});

async function serve(pattern: string): Promise<{ server: CoapPskServer; port: number }> {
  const server = await createServer({
    keys: await openKeySource(loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' })),
    identity: { pattern },
    metrics: { processMetrics: false },
    routes: (router) => {
      router.get('/me', (req, res) => res.end(`${req.identityParts.tenant}|${req.serial}|${req.identity}`));
    },
  });
  servers.push(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

describe.each([
  ['^(?<tenant>[^/]+)/(?<serial>.+)$', 'acme/SN-77', 'no-tenant-here'],
  ['^(?<serial>[^@]+)@(?<tenant>.+)$', 'SN-77@acme', 'SN-77'],
])('pattern %s', (pattern, identity, unmatched) => {
  let port: number;
  let server: CoapPskServer;
  beforeAll(async () => {
    ({ server, port } = await serve(pattern));
  });

  it(`${identity} authenticates with the key of SN-77 and handlers see the parts`, async () => {
    const res = await coapClient({ impl: 'openssl', identity, key: expectedHexKey('SN-77'), uri: `coaps://127.0.0.1:${port}/me` });
    expect(res.ok, res.stderr).toBe(true);
    expect(res.payload).toBe(`acme|SN-77|${identity}`);
  });

  it(`${identity} with the key of the whole identity is refused (the serial is what is derived)`, async () => {
    const res = await coapClient({ impl: 'openssl', identity, key: expectedHexKey(identity), uri: `coaps://127.0.0.1:${port}/me`, timeoutSec: 3 });
    expect(res.ok).toBe(false);
  });

  it(`${unmatched} does not match and is refused, whatever its key`, async () => {
    const res = await coapClient({ impl: 'openssl', identity: unmatched, key: expectedHexKey(unmatched), uri: `coaps://127.0.0.1:${port}/me`, timeoutSec: 3 });
    expect(res.ok).toBe(false);
    expect(sample(await server.metrics.metrics(), 'coap_psk_identity_refused_total')).toBeGreaterThanOrEqual(1);
  });
});
