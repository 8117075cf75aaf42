/**
 * The key lookup is asynchronous: while one device's handshake waits 300 ms for the HSM,
 * another device's requests on its established session are answered. The resolver is the
 * real PKCS#11 one on a SoftHSM token, wrapped to add the delay for one serial only.
 *
 * No timing is asserted: the test checks the order of events (replies that arrived while the
 * slow lookup was pending).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createResolver, loadKeyConfig } from '../../src/config/keys.js';
import type { KeyResolver } from '../../src/keys/types.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import type { TestToken } from '../helpers/softhsm.js';
import { makeToken, ndcConnect } from './fixture.js';

const SLOW = 'SN-slow';
const FAST = 'SN-fast';

let token: TestToken;
let server: CoapPskServer;
let port: number;
const lookup = { started: 0, finished: 0 };

beforeAll(async () => {
  token = await makeToken('interop-slow');
  const real = await createResolver(loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'raw', COAP_PSK_CACHE_MAX: '0' }));
  const keys: KeyResolver = {
    async resolve(identity) {
      if (identity.toString() !== SLOW) return real.resolve(identity);
      lookup.started = performance.now();
      await new Promise((r) => setTimeout(r, 300));
      const result = await real.resolve(identity);
      lookup.finished = performance.now();
      return result;
    },
    close: () => real.close(),
  };
  server = await createServer({ keys });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
  await token?.cleanup();
});

const connect = (serial: string) => ndcConnect(port, serial);

it('answers an established device while another handshake waits for the HSM', async () => {
  const fast = await connect(FAST);
  const replyTimes: number[] = [];
  fast.on('message', (m: Buffer) => {
    const r = parseReply(m);
    if (r?.code === '2.05' && r.payload.toString() === FAST) replyTimes.push(performance.now());
  });

  const slowConnected = connect(SLOW);
  // Requests every 20 ms, 40 at most (bounded), until the slow handshake is done.
  let done = false;
  void slowConnected.then(() => (done = true));
  for (let i = 0; i < 40 && !done; i++) {
    fast.send(coapGet(100 + i, ['whoami']));
    await new Promise((r) => setTimeout(r, 20));
  }
  const slow = await slowConnected;
  expect(lookup.started).toBeGreaterThan(0);
  expect(lookup.finished).toBeGreaterThan(lookup.started);
  const duringLookup = replyTimes.filter((t) => t > lookup.started && t < lookup.finished);
  expect(duringLookup.length).toBeGreaterThanOrEqual(3);

  // And the slow device, once through, is served as well.
  const reply = await new Promise<Buffer>((resolve) => {
    slow.once('message', resolve);
    slow.send(coapGet(1, ['whoami']));
  });
  expect(parseReply(reply)?.payload.toString()).toBe(SLOW);
  fast.close();
  slow.close();
});
