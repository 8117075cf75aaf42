/**
 * The DtlsServer's CID routing hook (src/dtls/server.ts `routeCids`): a tls12_cid record whose
 * CID carries another route, and names no session here, goes to `foreign`; one forwarded from
 * elsewhere never goes there again; other datagrams never do. The CIDs are made by a separate
 * CidFactory with the same secret, as another worker of the group makes them. No socket: the
 * datagrams are fed to onDatagram.
 */
import { describe, expect, it } from 'vitest';
import { CidFactory } from '../../../src/dtls/cid-factory.js';
import { encodeCidRecord } from '../../../src/dtls/cid-record.js';
import { DtlsServer } from '../../../src/dtls/server.js';

const SECRET = Buffer.alloc(32, 7); // test secret only
const DTLS12 = 0xfefd;

function serverWithRoute(route: number) {
  const calls: Array<{ route: number; address: string; port: number }> = [];
  const server = new DtlsServer({ pskLookup: async () => [], cidLength: 6 });
  const ok = server.routeCids({
    route, routeBytes: 1, secret: SECRET,
    foreign(r, _d, address, port) {
      calls.push({ route: r, address, port });
      return true;
    },
  });
  return { server, calls, ok };
}

const cidRecord = (cid: Buffer) => encodeCidRecord(DTLS12, 1, 5, cid, Buffer.alloc(32, 0xaa));

describe('DtlsServer CID routing hook', () => {
  it('hands a record of another route to foreign, with its source address', () => {
    const { server, calls, ok } = serverWithRoute(1);
    expect(ok).toBe(true);
    const cid = new CidFactory({ length: 6, routeBytes: 1, secret: SECRET }).create(2)!;
    server.onDatagram(cidRecord(cid), '127.0.0.9', 40001);
    expect(calls).toEqual([{ route: 2, address: '127.0.0.9', port: 40001 }]);
  });

  it('keeps records of its own route, forwarded ones, and plain records to itself', () => {
    const { server, calls } = serverWithRoute(1);
    const factory = new CidFactory({ length: 6, routeBytes: 1, secret: SECRET });
    server.onDatagram(cidRecord(factory.create(1)!), '127.0.0.9', 40001);
    server.onDatagram(cidRecord(factory.create(2)!), '127.0.0.9', 40001, true);
    const plain = Buffer.concat([Buffer.from([23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 5, 0, 32]), Buffer.alloc(32)]);
    server.onDatagram(plain, '127.0.0.9', 40001);
    expect(calls).toEqual([]);
    expect(server.stats.dropped.no_session).toBe(3);
  });

  it('refuses a CID length without room for the route', () => {
    const server = new DtlsServer({ pskLookup: async () => [], cidLength: 4 });
    expect(server.routeCids({ route: 1, routeBytes: 1, secret: SECRET, foreign: () => true })).toBe(false);
  });
});
