/**
 * The peer table of a ForwardLink (src/cluster/forward-link.ts) with static peers, on loopback:
 * a static peer is up only while its HELLOs arrive, so a node that stopped is not sent records
 * that would be lost (they are dropped and counted by the caller instead); the node that starts
 * second is known to the first at once, because a HELLO from a peer that was not up is answered.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ForwardLink } from '../../src/cluster/forward-link.js';
import { until } from '../helpers/wait.js';

const KEY = Buffer.alloc(32, 0x6e); // test key only
const DEVICE = { address: '192.0.2.7', port: 40000 };
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function boundSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((ready) => socket.bind(0, '127.0.0.1', ready));
  cleanups.push(() => socket.close());
  return socket;
}

describe('ForwardLink static peers', () => {
  it('are up once heard from, and down after the timeout without HELLOs', async () => {
    const [a, b] = [await boundSocket(), await boundSocket()];
    let clockA = Date.now();
    const linkA = new ForwardLink({
      nodeId: 0, clusterKey: KEY, socket: a, now: () => clockA, helloIntervalMs: 60_000, peerTimeoutMs: 15_000,
      peers: [{ nodeId: 1, host: '127.0.0.1', port: b.address().port }],
    });
    const events: string[] = [];
    linkA.on('peer-up', (n: number) => events.push(`up ${n}`));
    linkA.on('peer-down', (n: number) => events.push(`down ${n}`));
    linkA.start();
    cleanups.push(() => linkA.close());
    // Node 1 does not run yet: nothing is forwarded to it.
    expect(linkA.peer(1)).toBeUndefined();
    expect(linkA.forward(1, Buffer.from('19', 'hex'), DEVICE)).toBe(false);

    const linkB = new ForwardLink({
      nodeId: 1, clusterKey: KEY, socket: b, helloIntervalMs: 60_000,
      peers: [{ nodeId: 0, host: '127.0.0.1', port: a.address().port }],
    });
    const forwarded: number[] = [];
    linkB.on('forward', (m: { senderNode: number }) => forwarded.push(m.senderNode));
    linkB.start(); // its one HELLO, and node 0's answer to it: no wait for the next period
    cleanups.push(() => linkB.close());
    await until(() => linkA.peer(1) !== undefined && linkB.peer(0) !== undefined, 5000);
    expect(linkA.peer(1)).toEqual({ address: '127.0.0.1', port: b.address().port });
    expect(linkA.forward(1, Buffer.from('19', 'hex'), DEVICE)).toBe(true);
    await until(() => forwarded.length === 1, 5000);

    // No HELLO from node 1 for longer than the timeout: gone, though still listed.
    clockA += 15_001;
    expect(linkA.peer(1)).toBeUndefined();
    expect(linkA.forward(1, Buffer.from('19', 'hex'), DEVICE)).toBe(false);
    expect(events).toEqual(['up 1', 'down 1']);
  });
});
