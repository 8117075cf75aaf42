/**
 * The sockets of the workers: SO_REUSEPORT through DtlsServer.listen and the primary's group,
 * and a primary that holds a socket without reading it (src/cluster/sockets.ts).
 */
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { bindSocketGroup, closeSocket, holdWithoutReading } from '../../src/cluster/sockets.js';
import { DtlsServer } from '../../src/dtls/server.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { pskLookupFromResolver } from '../../src/psk-lookup.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';

const pskLookup = () => pskLookupFromResolver(new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.alloc(16, 7) }], encoding: 'raw', warn: () => {} })); // test key only
const sizes = { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 };

describe.skipIf(NO_REUSE_PORT)(`reusePort${SKIP_REASON}`, () => {
  it('lets two DtlsServers listen on one port, and without it the second bind fails', async () => {
    const a = new DtlsServer({ pskLookup: pskLookup() });
    const b = new DtlsServer({ pskLookup: pskLookup() });
    const c = new DtlsServer({ pskLookup: pskLookup() });
    const { port } = await a.listen(0, '127.0.0.1', { reusePort: true });
    expect((await b.listen(port, '127.0.0.1', { reusePort: true })).port).toBe(port);
    await expect(c.listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await Promise.all([a.close(), b.close()]);
  });

  it('serves a DtlsServer on a socket bound by someone else', async () => {
    const [socket] = await bindSocketGroup(1, 0, '127.0.0.1', sizes);
    const server = new DtlsServer({ pskLookup: pskLookup() });
    expect(await server.listen(1, 'ignored', { socket: socket! })).toEqual({ address: '127.0.0.1', port: socket!.address().port });
    await server.close();
  });

  it('holds a socket of the group without reading from it', async () => {
    const [held] = await bindSocketGroup(1, 0, '127.0.0.1', sizes);
    expect(holdWithoutReading(held!)).toBe(true);
    let read = 0;
    held!.on('message', () => read++);
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.send(Buffer.from('x'), held!.address().port, '127.0.0.1', () => r()));
    await new Promise((r) => setTimeout(r, 300));
    expect(read).toBe(0);
    client.close();
    await closeSocket(held!);
  });
});
