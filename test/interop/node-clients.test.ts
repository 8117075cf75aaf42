/**
 * The two independent DTLS client libraries on npm, in process, against the server in process
 * on a real SoftHSM token through pkcs11js.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import nodertc from '@nodertc/dtls';
import { createResolver, loadKeyConfig } from '../../src/config/keys.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedPsk, makeToken, ndcConnect } from './fixture.js';

let token: TestToken;
let server: CoapPskServer;
let port: number;

beforeAll(async () => {
  token = await makeToken('interop-node');
  const keys = await createResolver(loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'raw' }));
  // node-dtls-client has no encrypt_then_mac: its CBC case needs MAC-then-encrypt allowed.
  server = await createServer({ keys, dtls: { allowCbcWithoutEncryptThenMac: true } });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
  await token?.cleanup();
});

it.each(['TLS_PSK_WITH_AES_128_CCM_8', 'TLS_PSK_WITH_AES_128_GCM_SHA256', 'TLS_PSK_WITH_AES_128_CBC_SHA256'])(
  'node-dtls-client with %s gets /whoami',
  async (suite) => {
    const serial = `SN-ndc-${suite.slice(-6)}`;
    const socket = await ndcConnect(port, serial, suite);
    const reply = await new Promise<Buffer>((resolve) => {
      socket.once('message', (m: Buffer) => {
        socket.close();
        resolve(m);
      });
      socket.send(coapGet(1, ['whoami']));
    });
    const parsed = parseReply(reply)!;
    expect(parsed.code).toBe('2.05');
    expect(parsed.payload.toString()).toBe(serial);
  },
);

it('@nodertc/dtls (extended master secret) gets /whoami', async () => {
  const serial = 'SN-nodertc';
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const socket = nodertc.connect({
      type: 'udp4',
      remotePort: port,
      remoteAddress: '127.0.0.1',
      pskIdentity: serial,
      pskSecret: expectedPsk(serial),
      cipherSuites: ['TLS_PSK_WITH_AES_128_GCM_SHA256'],
      maxHandshakeRetransmissions: 4,
    });
    socket.once('connect', () => socket.write(coapGet(7, ['whoami'])));
    socket.once('data', (m: Buffer) => {
      socket.close();
      resolve(m);
    });
    socket.once('error', reject);
  });
  const parsed = parseReply(reply)!;
  expect(parsed.code).toBe('2.05');
  expect(parsed.messageId).toBe(7);
  expect(parsed.payload.toString()).toBe(serial);
});
