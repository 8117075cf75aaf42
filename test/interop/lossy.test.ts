/**
 * Handshakes complete over a network that loses and reorders datagrams: libcoap's client,
 * through a seeded loopback relay, against the real server process. Each case also drops
 * chosen flights outright, so every retransmission path is taken at least once:
 * our flight 4 (ServerHello...), the client's flight 5 (ClientKeyExchange...), our final
 * flight (ChangeCipherSpec, Finished).
 */
import { expect, it } from 'vitest';
import { startLossyRelay } from '../helpers/lossy-relay.js';
import { coapClient } from '../helpers/peers.js';
import { expectedHexKey, serverOnTestToken } from './fixture.js';

const ctx = serverOnTestToken('interop-lossy', { COAP_PSK_KEY_ENCODING: 'hex' });

// Datagram indexes per direction: to the server 0 = ClientHello, 1 = ClientHello with cookie,
// 2 = flight 5; to the client 0 = HelloVerifyRequest, 1 = flight 4, 2 = final flight.
const CASES: Array<[string, { toTarget?: number[]; toClient?: number[] }, number]> = [
  ['flight 4 lost', { toClient: [1] }, 11],
  ['flight 5 lost', { toTarget: [2] }, 12],
  ['final flight lost', { toClient: [2] }, 13],
  ['first ClientHello and HelloVerifyRequest lost', { toTarget: [0], toClient: [0] }, 14],
];

it.each(CASES)('completes when %s (and 10%% random loss, 20%% reordering)', async (_name, dropIndexes, seed) => {
  const relay = await startLossyRelay({
    target: { host: '127.0.0.1', port: ctx.server.port },
    dropRate: 0.1,
    reorderRate: 0.2,
    seed,
    maxDatagrams: 400,
    dropIndexes,
  });
  try {
    const serial = `SN-lossy-${seed}`;
    const res = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${relay.port}/whoami`, timeoutSec: 20 });
    expect(res.responseCode, `${res.stderr}\n${JSON.stringify(relay.stats)}`).toBe('2.05');
    expect(res.payload).toBe(serial);
    expect(relay.stats.toTarget.dropped + relay.stats.toClient.dropped).toBeGreaterThan(0);
  } finally {
    await relay.close();
  }
}, 40_000);
