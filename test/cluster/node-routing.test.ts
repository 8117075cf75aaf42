/**
 * Node forwarding (src/cluster/node-routing.ts) between whole servers in one process, on
 * loopback: each node a createServer() with its own public port and cluster port, the device
 * this project's client with a Connection ID. "The load balancer moved the device" is the device
 * sending to another node's public port. Which path a reply took is told by its source port:
 * backwarded, it comes from the node the device sent to; direct, from the owner.
 * (The same through nftables DNAT, with real NAT: test/cluster/load-balancer.test.ts.)
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { startNodeRouting, type NodeRouting } from '../../src/cluster/node-routing.js';
import { deriveClusterKey, encodeForwardMessage, ForwardType } from '../../src/cluster/forward-wire.js';
import type { ClusterPeer } from '../../src/cluster/cluster-settings.js';
import { DtlsClientSession } from '../../src/dtls/client.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { silentLogger } from '../../src/log.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import { freeUdpPort, LOOPBACK } from '../helpers/ports.js';
import { sample } from '../helpers/prometheus.js';
import { TEST_MASTER, testPsk } from '../helpers/software-dtls-server.js';
import { until } from '../helpers/wait.js';

const CLUSTER_KEY = Buffer.alloc(32, 0x2d); // test key only
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Node { server: CoapPskServer; routing: NodeRouting; port: number; clusterPort: number }

async function startNode(nodeId: number, clusterPort: number, peers: ClusterPeer[], backward = true): Promise<Node> {
  const keys = new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(TEST_MASTER) }], encoding: 'raw', warn: () => {} });
  const server = await createServer({ keys, metrics: { processMetrics: false } });
  const routing = await startNodeRouting(server, { nodeId, port: clusterPort, key: Buffer.from(CLUSTER_KEY), peers, backward }, LOOPBACK, silentLogger());
  const { port } = await server.listen(0, LOOPBACK);
  cleanups.push(async () => {
    await server.close();
    await routing.close();
  });
  return { server, routing, port, clusterPort };
}

/** Nodes 0..n-1, each with every other as a static peer, once they have heard from each other. */
async function startNodes(n: number, backward = true): Promise<Node[]> {
  const ports = await Promise.all(Array.from({ length: n }, () => freeUdpPort()));
  const peers = ports.map((port, nodeId) => ({ nodeId, host: LOOPBACK, port }));
  const nodes: Node[] = [];
  for (let i = 0; i < n; i++) nodes.push(await startNode(i, ports[i]!, peers, backward));
  await until(() => nodes.every((a, i) => nodes.every((_, j) => i === j || a.routing.link.peer(j) !== undefined)), 5000);
  return nodes;
}

async function metric(node: Node, name: string, labels?: Record<string, string>): Promise<number> {
  return sample(await node.server.metrics.metrics(), name, labels) ?? 0;
}

/** The series once it is non-zero, or 0 after a second (bounded polling). */
async function counted(node: Node, name: string, labels?: Record<string, string>): Promise<number> {
  for (let i = 0; i < 50 && (await metric(node, name, labels)) === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return metric(node, name, labels);
}

/** A device with CID, whose datagrams go to `target` (switchable: the load balancer's choice). */
async function device(serial: string, port: number) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((ready) => socket.bind(0, LOOPBACK, ready));
  cleanups.push(() => new Promise<void>((done) => socket.close(() => done())));
  const d = {
    target: port,
    replies: [] as Array<{ payload: string; fromPort: number }>,
    session: undefined as unknown as DtlsClientSession,
    fromPort: 0,
    /** The next datagram is kept instead of sent. */
    hold: false,
    held: [] as Buffer[],
  };
  d.session = new DtlsClientSession({ identity: serial, psk: testPsk(serial), connectionId: Buffer.alloc(0) }, (datagram) => {
    if (d.hold) {
      d.hold = false;
      d.held.push(Buffer.from(datagram));
      return;
    }
    socket.send(datagram, d.target, LOOPBACK);
  });
  socket.on('message', (msg, rinfo) => {
    d.fromPort = rinfo.port;
    d.session.onDatagram(msg);
  });
  d.session.on('data', (data: Buffer) => {
    const reply = parseReply(data);
    if (reply) d.replies.push({ payload: reply.payload.toString(), fromPort: d.fromPort });
  });
  d.session.on('error', () => {});
  const established = new Promise((resolve, reject) => {
    d.session.once('established', resolve).once('close', (reason: string) => reject(new Error(reason)));
  });
  d.session.start();
  await established;
  return d;
}

let messageId = 0x3000;
async function whoami(d: Awaited<ReturnType<typeof device>>): Promise<{ payload: string; fromPort: number }> {
  const before = d.replies.length;
  d.session.send(coapGet(++messageId, ['whoami']));
  await until(() => d.replies.length > before, 3000);
  return d.replies.at(-1)!;
}

describe('node forwarding between servers (loopback)', () => {
  it("forwards a record to the node its CID names, and the owner's reply comes back through the receiving node", async () => {
    const [a, b] = await startNodes(2);
    const d = await device('SN-node-fwd', a!.port);
    expect(await whoami(d)).toEqual({ payload: 'SN-node-fwd', fromPort: a!.port });
    d.target = b!.port; // the load balancer sends the device's flow to node 1 now
    expect(await whoami(d)).toEqual({ payload: 'SN-node-fwd', fromPort: b!.port });
    expect(await whoami(d)).toEqual({ payload: 'SN-node-fwd', fromPort: b!.port });
    expect(await metric(b!, 'coap_psk_cluster_forwarded_total')).toBe(2);
    expect(await metric(a!, 'coap_psk_cluster_accepted_total', { type: 'forward' })).toBe(2);
    expect(await metric(a!, 'coap_psk_cluster_backwarded_total')).toBe(2);
    expect(await metric(b!, 'coap_psk_cluster_accepted_total', { type: 'backward' })).toBe(2);
    expect(a!.server.dtls.sessionCount).toBe(1);
    expect(b!.server.dtls.sessionCount).toBe(0);
    // Back on node 0 directly: the newest record came straight, so the reply leaves from node 0.
    d.target = a!.port;
    expect(await whoami(d)).toEqual({ payload: 'SN-node-fwd', fromPort: a!.port });
    expect(await metric(a!, 'coap_psk_cluster_backwarded_total')).toBe(2);
  });

  it('with backward off, the owner answers from its own socket (direct server return)', async () => {
    const [a, b] = await startNodes(2, false);
    const d = await device('SN-node-dsr', a!.port);
    d.target = b!.port;
    expect(await whoami(d)).toEqual({ payload: 'SN-node-dsr', fromPort: a!.port });
    expect(await metric(b!, 'coap_psk_cluster_forwarded_total')).toBe(1);
    expect(await metric(a!, 'coap_psk_cluster_backwarded_total')).toBe(0);
  });

  it('drops and counts a record for a node it does not know, and never forwards a forwarded one again', async () => {
    const [a, b] = await startNodes(2);
    const loner = await startNode(2, await freeUdpPort(), []); // knows neither 0 nor 1
    const d = await device('SN-node-drop', a!.port);
    await whoami(d);
    d.target = loner.port;
    d.session.send(coapGet(++messageId, ['whoami']));
    expect(await counted(loner, 'coap_psk_cluster_dropped_total', { reason: 'unknown_node' })).toBe(1);
    expect(await metric(loner, 'coap_psk_cluster_forwarded_total')).toBe(0);

    // A FORWARD (authentic, from node 0) to node 1 whose CID names node 0: refused, not passed on.
    d.hold = true;
    d.session.send(coapGet(++messageId, ['whoami']));
    const record = d.held.shift()!;
    const sender = dgram.createSocket('udp4');
    cleanups.push(() => new Promise<void>((done) => sender.close(() => done())));
    const forward = encodeForwardMessage(deriveClusterKey(CLUSTER_KEY, 'forward'), {
      type: ForwardType.FORWARD, senderNode: 0, timestampMs: Date.now(), device: { address: LOOPBACK, port: 40000 }, payload: record,
    });
    sender.send(forward, b!.clusterPort, LOOPBACK);
    expect(await counted(b!, 'coap_psk_cluster_refused_total', { reason: 'misrouted' })).toBe(1);
    expect(await metric(b!, 'coap_psk_cluster_forwarded_total')).toBe(0);
    expect(await metric(a!, 'coap_psk_cluster_accepted_total', { type: 'forward' })).toBe(0);
  });
});
