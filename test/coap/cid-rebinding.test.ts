/**
 * NAT rebinding on the real server (createServer: DTLS, CoAP layer, router, metrics) with a
 * Connection ID (RFC 9146): a device changes its source port mid-session and its CoAP state
 * goes with it, because the CoAP layer hangs on the session object and the session follows its
 * peer (section 6). CoAP messages are built and parsed by coap-packet, not the server's codec.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteResponse } from '../../src/coap/router.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { DtlsCoapPeer, option, uint } from '../helpers/coap-dtls-peer.js';
import { sample } from '../helpers/prometheus.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
let server: CoapPskServer;
let port: number;
const observers = new Set<RouteResponse>();
const logLines: Array<Record<string, unknown>> = [];
let handshakes = 0;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  server = await createServer({
    keys: new SoftwareResolver({ keys: [{ label: 'k-cid', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} }),
    logger: pino({ level: 'info' }, sink),
    routes: (router) => {
      router.get('/me', (req, res) => res.end(req.identity));
      router.get('/temp', { obs: true }, (_req, res) => {
        res.write('t0');
        if (!res.observing) return;
        observers.add(res);
        res.onClose(() => observers.delete(res));
      });
    },
  });
  server.on('handshake', () => handshakes++);
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
});

async function scrape(name: string): Promise<number | undefined> {
  return sample(await server.metrics.registry.metrics(), name);
}

describe('NAT rebinding with a Connection ID, through the whole server', () => {
  it('a request before and after a source-port change, one handshake, and the Observe relation notifies the new port', async () => {
    const serial = 'SN-cid-nat';
    const peer = await DtlsCoapPeer.connect(port, serial, deriveSoftware(MASTER, Buffer.from(serial)), undefined, { connectionId: Buffer.alloc(0) });
    try {
      expect(peer.session.connectionIds.write?.length).toBe(6);
      expect(await scrape('coap_psk_cid_sessions')).toBe(1);
      const oldPort = peer.socket.address().port;

      peer.send({ messageId: 1, token: Buffer.from([1]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('me') }] });
      expect((await peer.next((p) => p.messageId === 1)).payload.toString()).toBe(serial);

      const token = Buffer.from([0x0b, 0x5e]);
      peer.send({ messageId: 2, token, confirmable: true, code: 'GET', options: [{ name: 'Observe', value: Buffer.alloc(0) }, { name: 'Uri-Path', value: Buffer.from('temp') }] });
      const registered = await peer.next((p) => p.messageId === 2);
      expect(registered.payload.toString()).toBe('t0');
      expect(uint(option(registered, 'Observe'))).toBeDefined();

      const newPort = await peer.rebind();
      expect(newPort).not.toBe(oldPort);
      // The device's first record from the new port moves the session (authenticated, newer).
      peer.send({ messageId: 3, token: Buffer.from([3]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('me') }] });
      expect((await peer.next((p) => p.messageId === 3)).payload.toString()).toBe(serial);

      expect(observers.size).toBe(1);
      for (const res of observers) res.write('t1');
      const note = await peer.next((p) => p.token.equals(token) && p.payload.toString() === 't1');
      expect(note.code).toBe('2.05');
      if (note.confirmable) peer.send({ messageId: note.messageId, ack: true, code: '0.00' });

      expect(handshakes).toBe(1);
      expect(await scrape('coap_psk_address_updates_total')).toBe(1);
      expect(await scrape('coap_psk_address_updates_rejected_total')).toBe(0);
      const moved = logLines.filter((l) => l.msg === 'peer address changed');
      expect(moved).toHaveLength(1);
      expect(moved[0]).toMatchObject({ identity: serial, from: `127.0.0.1:${oldPort}`, to: `127.0.0.1:${newPort}` });
    } finally {
      await peer.close();
    }
  });
});
