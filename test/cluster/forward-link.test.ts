/**
 * The cluster port between real namespaces (test/helpers/netns.ts): two nodes holding the cluster
 * key find each other by HELLO and carry a device's datagram with its address; a namespace that
 * does not hold the key (the devices' one) cannot get anything accepted, whatever it sends.
 * Forwarding is not wired into the server yet: this tests the link on its own.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveClusterKey, encodeForwardMessage, ForwardType } from '../../src/cluster/forward-wire.js';
import { createNetnsCluster, DEVICES_ADDRESS, netnsUnavailable, nodeAddress, type NetnsCluster } from '../helpers/netns.js';
import { startJsonChild, type JsonChild } from './json-child.js';

const CHILD = fileURLToPath(new URL('./link-child.ts', import.meta.url));
const CLUSTER_PORT = 5685;
const CLUSTER_KEY_HEX = 'a5'.repeat(32); // test key only
const unavailable = netnsUnavailable();

/** Polls an (async) condition every 50 ms; rejects after limitMs. */
async function waitFor(cond: () => boolean | Promise<boolean>, limitMs: number): Promise<void> {
  for (const started = Date.now(); !(await cond()); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() - started > limitMs) throw new Error('condition not reached');
  }
}

interface Stats { peers: Record<string, string>; refused: Record<string, number> }

describe.skipIf(unavailable !== undefined)('the cluster port between namespaces', { timeout: 60_000 }, () => {
  let cluster: NetnsCluster;
  const nodes: JsonChild[] = [];

  beforeAll(async () => {
    cluster = await createNetnsCluster({ nodes: 2 });
    for (const i of [0, 1]) {
      const other = 1 - i;
      nodes.push(startJsonChild(cluster, cluster.nodes[i], CHILD, {
        LINK_NODE_ID: String(i), LINK_KEY_HEX: CLUSTER_KEY_HEX, LINK_PORT: String(CLUSTER_PORT),
        LINK_DISCOVER: JSON.stringify([{ address: nodeAddress(other), port: CLUSTER_PORT }]),
      }));
    }
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await cluster?.destroy();
  });

  it('nodes learn each other from HELLOs, and a FORWARD arrives with the device address attached', async () => {
    await waitFor(async () => (await nodes[0].ask<Stats>({ op: 'stats' })).peers['1'] === `${nodeAddress(1)}:${CLUSTER_PORT}`, 10_000);
    await waitFor(async () => (await nodes[1].ask<Stats>({ op: 'stats' })).peers['0'] === `${nodeAddress(0)}:${CLUSTER_PORT}`, 10_000);
    const device = { address: DEVICES_ADDRESS, port: 40123 };
    expect(await nodes[0].ask({ op: 'forward', to: 1, payloadHex: '19fefd0001', device })).toMatchObject({ sent: true });
    await waitFor(() => nodes[1].events.some((e) => e.event === 'forward'), 5000);
    expect(nodes[1].events.find((e) => e.event === 'forward')).toEqual({ event: 'forward', senderNode: 0, device, payloadHex: '19fefd0001' });
    expect(await nodes[1].ask({ op: 'backward', to: 0, payloadHex: '17fefd0001', device })).toMatchObject({ sent: true });
    await waitFor(() => nodes[0].events.some((e) => e.event === 'backward'), 5000);
    // A node that is not in the table gets nothing: the record is dropped.
    expect(await nodes[0].ask({ op: 'forward', to: 7, payloadHex: '19', device })).toMatchObject({ sent: false });
  });

  it('refuses whatever a namespace without the cluster key sends, and takes none of it for a device', async () => {
    const before = (await nodes[1].ask<Stats>({ op: 'stats' })).refused.unauthentic ?? 0;
    const wrongKey = deriveClusterKey(Buffer.alloc(32, 0x5a), 'forward');
    const now = Date.now();
    const forged = [
      encodeForwardMessage(wrongKey, { type: ForwardType.FORWARD, senderNode: 0, timestampMs: now, device: { address: '10.155.0.2', port: 1 }, payload: Buffer.from('19fefd', 'hex') }),
      encodeForwardMessage(wrongKey, { type: ForwardType.HELLO, senderNode: 9, timestampMs: now, payload: Buffer.alloc(0) }),
      Buffer.from('0101000000000000000000000000000000', 'hex'),
      Buffer.from('19fefd000100000000000a1f2e3d4c5b6a0003aabbcc', 'hex'), // a bare DTLS record
    ];
    const sender = `const s = require('node:dgram').createSocket('udp4');
      const all = ${JSON.stringify(forged.map((b) => b.toString('hex')))};
      let n = 0;
      for (const hex of all) s.send(Buffer.from(hex, 'hex'), ${CLUSTER_PORT}, ${JSON.stringify(nodeAddress(1))}, () => { if (++n === all.length) s.close(); });`;
    const res = await cluster.exec(cluster.devices, process.execPath, ['-e', sender]);
    expect(res.exitCode, res.stderr).toBe(0);
    await waitFor(async () => ((await nodes[1].ask<Stats>({ op: 'stats' })).refused.unauthentic ?? 0) >= before + forged.length, 5000);
    const stats = await nodes[1].ask<Stats>({ op: 'stats' });
    expect(stats.peers).toEqual({ '0': `${nodeAddress(0)}:${CLUSTER_PORT}` }); // no node 9
    expect(nodes[1].events.filter((e) => e.event === 'forward')).toHaveLength(1); // only node 0's, from the test above
  });
});
