/**
 * Connection ID through the command a user runs: `coap-psk serve` as a child process on a
 * SoftHSM token, the project's DTLS client (its CID code written from RFC 9146, apart from the
 * server's) on real loopback sockets. A NAT rebinding is the client moving to a new socket.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectDtls } from '../../src/dtls/client.js';
import { whoamiOver } from '../helpers/coap-bytes.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedPsk, makeToken } from './fixture.js';

let token: TestToken;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  token = await makeToken('interop-cid');
});
afterAll(async () => {
  for (const s of servers) await s.stop();
  await token?.cleanup();
});

async function serve(args: string[] = []): Promise<ServerProcess> {
  const s = await startServerProcess(token.env, args);
  servers.push(s);
  return s;
}

it('the default server keeps the session across a source-port change: /whoami before and after, one handshake', async () => {
  const server = await serve();
  const serial = 'SN-cid-proc';
  const client = await connectDtls({ host: '127.0.0.1', port: server.port, identity: serial, psk: expectedPsk(serial), connectionId: Buffer.alloc(0) });
  try {
    expect(client.session.connectionIds.write?.length).toBe(6);
    const before = client.socket.address().port;
    expect(await whoamiOver(client, 1)).toBe(serial);
    const after = await client.rebind();
    expect(await whoamiOver(client, 2)).toBe(serial);
    const log = await server.waitForLog('"msg":"peer address changed"');
    expect(log).toContain(`"to":"127.0.0.1:${after}"`);
    expect(log).toContain(`"from":"127.0.0.1:${before}"`);
    expect(log.split('"msg":"handshake ok"').length - 1).toBe(1);
  } finally {
    await client.close();
  }
});

it('--cid-length 0: a client offering a CID completes an ordinary handshake and gets no CID', async () => {
  const server = await serve(['--cid-length', '0']);
  const serial = 'SN-cid-off';
  const client = await connectDtls({ host: '127.0.0.1', port: server.port, identity: serial, psk: expectedPsk(serial), connectionId: Buffer.from('0a0b', 'hex') });
  try {
    expect(client.session.connectionIds).toEqual({ write: undefined, read: undefined });
    expect(await whoamiOver(client, 1)).toBe(serial);
  } finally {
    await client.close();
  }
});
