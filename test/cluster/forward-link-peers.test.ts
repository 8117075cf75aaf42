/**
 * The peer table of a ForwardLink (src/cluster/forward-link.ts) with static peers, on loopback:
 * a static peer is up only while its HELLOs arrive, so a node that stopped is not sent records
 * that would be lost (they are dropped and counted by the caller instead); the node that starts
 * second is known to the first at once, because a HELLO from a peer that was not up is answered.
 * On a node of several workers (one link each, one cluster port): what one worker took is
 * entered by the others, and the workers' HELLOs are one peer to the other nodes.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ForwardLink } from '../../src/cluster/forward-link.js';
import { bindReusePort } from '../../src/cluster/sockets.js';
import { until } from '../helpers/wait.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';

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

describe('ForwardLink on a node of several workers', () => {
  it('takes a HELLO another worker took (heard), unless it is stale or its own id, and tells of the ones it takes', async () => {
    const [a, b] = [await boundSocket(), await boundSocket()];
    let clock = Date.now();
    const worker = new ForwardLink({ nodeId: 0, clusterKey: KEY, socket: a, now: () => clock, helloIntervalMs: 60_000, peerTimeoutMs: 15_000 });
    const told: Array<[number, { address: string; port: number }]> = [];
    worker.on('hello', (node: number, from: { address: string; port: number }) => told.push([node, from]));
    const up: number[] = [];
    worker.on('peer-up', (n: number) => up.push(n));
    worker.start();
    cleanups.push(() => worker.close());
    const elsewhere = { address: '127.0.0.1', port: b.address().port };
    worker.heard(2, elsewhere, clock - 15_001); // older than the timeout: that peer may be gone
    worker.heard(0, elsewhere); // this node's own id
    expect(worker.peer(2)).toBeUndefined();
    expect(worker.peer(0)).toBeUndefined();
    worker.heard(2, elsewhere, clock - 1000);
    expect(worker.peer(2)).toEqual(elsewhere);
    expect(up).toEqual([2]);
    clock += 14_001; // 15 001 ms after that HELLO
    expect(worker.peer(2)).toBeUndefined();

    // A HELLO this link takes itself is told of, with where it came from.
    clock = Date.now(); // the real clock again, or the peer's messages would be stale here
    const peer = new ForwardLink({ nodeId: 1, clusterKey: KEY, socket: b, helloIntervalMs: 60_000, peers: [{ nodeId: 0, host: '127.0.0.1', port: a.address().port }] });
    peer.start();
    cleanups.push(() => peer.close());
    await until(() => told.length > 0, 5000);
    expect(told[0]).toEqual([1, elsewhere]);
    expect(told.every(([n]) => n === 1)).toBe(true); // heard() is never told on
  });

  it.skipIf(NO_REUSE_PORT)(`several workers of one node on one port are one peer; a third process with their id is refused as a duplicate${SKIP_REASON}`, async () => {
    const peerSocket = await boundSocket();
    const peer = new ForwardLink({ nodeId: 0, clusterKey: KEY, socket: peerSocket, helloIntervalMs: 60_000 });
    const up: number[] = [];
    const hellos: number[] = [];
    peer.on('peer-up', (n: number) => up.push(n));
    peer.on('hello', (n: number) => hellos.push(n));
    peer.start();
    cleanups.push(() => peer.close());
    // Two workers of node 1 on one port; each sends its HELLO to node 0 as it starts.
    const first = await reusePortSocket(0);
    const port = first.address().port;
    const toPeer = [{ nodeId: 0, host: '127.0.0.1', port: peerSocket.address().port }];
    const workers = [first, await reusePortSocket(port)].map((socket) => new ForwardLink({ nodeId: 1, clusterKey: KEY, socket, helloIntervalMs: 60_000, peers: toPeer }));
    const duplicates: string[] = [];
    for (const w of workers) {
      w.on('duplicate-node-id', (address: string) => duplicates.push(address));
      w.start();
      cleanups.push(() => w.close());
    }
    // Two at least: a worker that had not heard node 0 also answers node 0's answer.
    await until(() => hellos.length >= 2, 5000);
    expect(new Set(hellos)).toEqual(new Set([1]));
    expect(peer.peer(1)).toEqual({ address: '127.0.0.1', port });
    expect(up).toEqual([1]);

    // Another process claiming node id 1, from another port, HELLOs node 1's port (listed under
    // another id: a link skips its own): refused by whichever worker takes it, once.
    const impostor = new ForwardLink({ nodeId: 1, clusterKey: KEY, socket: await boundSocket(), helloIntervalMs: 60_000, peers: [{ nodeId: 5, host: '127.0.0.1', port }] });
    impostor.start();
    cleanups.push(() => impostor.close());
    await until(() => duplicates.length === 1, 5000);
    expect(duplicates).toEqual(['127.0.0.1']);
    expect(workers.reduce((n, w) => n + (w.refused.get('own_node_id') ?? 0), 0)).toBe(1);
    expect(peer.peer(1)).toEqual({ address: '127.0.0.1', port });
  });
});

async function reusePortSocket(port: number): Promise<dgram.Socket> {
  const socket = await bindReusePort(port, '127.0.0.1', { recvBufferSize: 65536, sendBufferSize: 65536 });
  cleanups.push(() => socket.close());
  return socket;
}
