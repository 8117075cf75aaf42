/**
 * The HSM goes away at run time and comes back: the real SoftHSM token's directory is taken
 * away and restored under a running server. While it is gone, handshakes fail with an alert
 * (only those); established sessions keep working; once it is back, the resolver logs in again
 * by itself and handshakes succeed, without a restart.
 */
import { rename } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createResolver, loadKeyConfig } from '../../src/config/keys.js';
import { AlertDescription } from '../../src/dtls/constants.js';
import { connectDtls, DtlsClientError } from '../../src/dtls/client.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { whoamiOver } from '../helpers/coap-bytes.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedPsk, makeToken } from './fixture.js';

let token: TestToken;
let server: CoapPskServer;
let port: number;

beforeAll(async () => {
  token = await makeToken('interop-fault');
  process.env.SOFTHSM2_CONF = token.confPath;
  // Cache off: every handshake asks the token.
  const keys = await createResolver(loadKeyConfig({ ...token.env, COAP_PSK_CACHE_MAX: '0' }));
  server = await createServer({ keys, dtls: { keyLookupTimeoutMs: 3000 } });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
  await token?.cleanup();
});

const connect = (serial: string) =>
  connectDtls({ host: '127.0.0.1', port, identity: serial, psk: expectedPsk(serial), timeoutMs: 8000 });

const whoami = whoamiOver;

it('fails handshakes while the token is gone and recovers by itself when it is back', async () => {
  const established = await connect('SN-before');
  expect(await whoami(established, 1)).toBe('SN-before');

  await rename(`${token.dir}/tokens`, `${token.dir}/tokens-away`);
  try {
    const refused = await connect('SN-during').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DtlsClientError);
    expect((refused as DtlsClientError).alert).toBe(AlertDescription.internal_error);
    // The session made before the fault does not need the HSM.
    expect(await whoami(established, 2)).toBe('SN-before');
  } finally {
    await rename(`${token.dir}/tokens-away`, `${token.dir}/tokens`);
  }

  // Recovery backs off; a device retries its handshake, as here (bounded: 10 attempts).
  let recovered: Awaited<ReturnType<typeof connect>> | undefined;
  for (let attempt = 0; attempt < 10 && !recovered; attempt++) {
    recovered = await connect('SN-after').catch(async () => {
      await new Promise((r) => setTimeout(r, 500));
      return undefined;
    });
  }
  expect(recovered, 'no handshake succeeded after the token came back').toBeDefined();
  expect(await whoami(recovered!, 3)).toBe('SN-after');
  await recovered!.close();
  await established.close();
}, 60_000);
