// The lossy relay: reproducible decisions, and libcoap's DTLS + CoAP retransmissions get a
// GET through 10% loss and some reordering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { mulberry32, startLossyRelay } from '../helpers/lossy-relay.js';
import { coapClient, startCoapServerOpenssl, type CoapServer } from '../helpers/peers.js';

const KEY = '00112233445566778899aabbccddeeff'; // test key only
const ID = 'relay-device';

/** A UDP echo target plus a client socket; sends n numbered datagrams and collects echoes. */
// A held datagram goes out with the next one of its lane, or alone after holdMs. With 2 ms
// between sends, holdMs far above any scheduling delay of a loaded machine makes "the next
// one" the only case that occurs (but for the last), so the outcome depends on the seed alone.
async function echoThrough(opts: { dropRate: number; reorderRate: number; seed: number; n: number }) {
  const echo = dgram.createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
  const relay = await startLossyRelay({
    target: { host: '127.0.0.1', port: echo.address().port },
    dropRate: opts.dropRate, reorderRate: opts.reorderRate, seed: opts.seed,
    maxDatagrams: 10_000, holdMs: 2_000,
  });
  const client = dgram.createSocket('udp4');
  const got: number[] = [];
  client.on('message', (m) => got.push(m.readUInt16BE(0)));
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  for (let i = 0; i < opts.n; i++) {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(i);
    client.send(b, relay.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 2)); // keep order at the relay's input
  }
  // Bounded wait until every datagram that survived both lanes is back (a held last one
  // leaves after holdMs).
  const s = relay.stats;
  const done = () => s.toClient.received === opts.n - s.toTarget.dropped && got.length === s.toClient.received - s.toClient.dropped;
  for (let waited = 0; waited < 6_000 && !done(); waited += 50) await new Promise((r) => setTimeout(r, 50));
  const stats = structuredClone(relay.stats);
  await relay.close();
  client.close();
  echo.close();
  return { got, stats };
}

describe('lossy relay', () => {
  it('mulberry32 is deterministic', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('passes everything at rate 0, in order', async () => {
    const { got, stats } = await echoThrough({ dropRate: 0, reorderRate: 0, seed: 1, n: 50 });
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(stats.toTarget.forwarded).toBe(50);
    expect(stats.toClient.forwarded).toBe(50);
  });

  it('drops and reorders the same way for the same seed', async () => {
    const a = await echoThrough({ dropRate: 0.1, reorderRate: 0.2, seed: 7, n: 100 });
    const b = await echoThrough({ dropRate: 0.1, reorderRate: 0.2, seed: 7, n: 100 });
    expect(b.got).toEqual(a.got);
    expect(a.stats.toTarget.dropped + a.stats.toClient.dropped).toBeGreaterThan(0);
    expect(a.stats.toTarget.reordered + a.stats.toClient.reordered).toBeGreaterThan(0);
    expect(a.got.some((v, i) => i > 0 && v < a.got[i - 1]!)).toBe(true); // really out of order
  });

  it('stops forwarding after maxDatagrams', async () => {
    const echo = dgram.createSocket('udp4');
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
    let seen = 0;
    echo.on('message', () => seen++);
    const relay = await startLossyRelay({
      target: { host: '127.0.0.1', port: echo.address().port },
      dropRate: 0, reorderRate: 0, seed: 1, maxDatagrams: 5,
    });
    const client = dgram.createSocket('udp4');
    for (let i = 0; i < 10; i++) client.send(Buffer.from([i]), relay.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toBe(5);
    expect(relay.stats.overLimit).toBe(5);
    await relay.close();
    client.close();
    echo.close();
  });
});

describe('coap-client GET through the lossy relay to coap-server-openssl', () => {
  let server: CoapServer;
  beforeAll(async () => {
    server = await startCoapServerOpenssl({ key: KEY, lifetimeSec: 120 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('completes with 10% drop and 20% reorder, losing the first ClientHello', async () => {
    const relay = await startLossyRelay({
      target: { host: '127.0.0.1', port: server.port },
      dropRate: 0.1, reorderRate: 0.2, seed: 2024, maxDatagrams: 500,
      dropIndexes: { toTarget: [0] }, // first ClientHello: forces a DTLS retransmission
    });
    try {
      for (const impl of ['openssl', 'gnutls'] as const) {
        const res = await coapClient({
          impl, identity: ID, key: KEY, uri: `coaps://127.0.0.1:${relay.port}/time`,
          timeoutSec: 12,
        });
        expect(res.ok, `${impl}: ${res.stdout.slice(-500)}`).toBe(true);
      }
      expect(relay.stats.toTarget.dropped + relay.stats.toClient.dropped).toBeGreaterThan(0);
      expect(relay.stats.clients).toBe(2);
    } finally {
      await relay.close();
    }
  }, 40_000);
});
