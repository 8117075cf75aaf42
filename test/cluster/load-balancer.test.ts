/**
 * Three `coap-psk serve` nodes behind the kernel's UDP load balancing, as kube-proxy's nftables
 * mode does it (test/helpers/netns.ts): each node in a network namespace of its own, a virtual
 * address in a load-balancer namespace that DNATs to them, devices in a fourth namespace. All
 * nodes hold the same master key (one SoftHSM token), so any node can serve any device; the
 * only state is the DTLS session, which lives on the node that made it.
 *
 * The nodes run as cluster nodes (docs/cluster.md): node ids 0..2, a cluster port, one cluster
 * key file, every node's cluster address as static peers. What the test shows:
 *  - with 4-tuple affinity (jhash), real clients handshake and are served through the VIP;
 *  - a node that stops loses its own sessions only; its devices handshake again on another node;
 *  - with round-robin, a device without CID whose flow moves to another node (a NAT rebinding:
 *    a new source port) loses its session: the other node does not know it;
 *  - with CID, the same device keeps its session: the node its new flow reaches forwards its
 *    records to the owner (the node its CID names), whose replies come back through that node,
 *    from the VIP the device sent to; no new handshake;
 *  - a namespace without the cluster key gets nothing it sends to a cluster port served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveClusterKey, encodeForwardMessage, ForwardType } from '../../src/cluster/forward-wire.js';
import { coapClient } from '../helpers/peers.js';
import { createNetnsCluster, DEVICES_ADDRESS, netnsUnavailable, nodeAddress, type NetnsCluster } from '../helpers/netns.js';
import type { ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';
import { startFleet, type Fleet } from './fleet.js';
import { CLUSTER_PORT, deviceKey, expectRebindKeepsSession, nodeMetrics, nodeName, PROBED, series, startClusterNodes, stopClusterNodes } from './netns-nodes.js';

const NODES = 3;
const MAX_DEVICES = 30; // enough for jhash to give every node two devices (a miss is (2/3)^30-rare)

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`cluster tests skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('a cluster of 3 nodes behind nftables DNAT', { timeout: 60_000 }, () => {
  let cluster: NetnsCluster;
  let token: TestToken;
  let fleet: Fleet;
  const nodes: ServerProcess[] = [];
  const keyDir = mkdtempSync(join(tmpdir(), 'cluster-key-'));

  const metrics = (i: number) => nodeMetrics(cluster).text(i);

  beforeAll(async () => {
    cluster = await createNetnsCluster({ nodes: NODES });
    token = await makeToken('cluster');
    const peers = cluster.nodes.map((_, i) => `${i}=${nodeAddress(i)}:${CLUSTER_PORT}`).join(',');
    nodes.push(...(await startClusterNodes(cluster, token, keyDir, { COAP_PSK_CLUSTER_PEERS: peers })));
    fleet = startFleet(cluster);
  });

  afterAll(async () => {
    await stopClusterNodes({ fleet, nodes, cluster, token, keyDir });
  });

  it('every node answers the readiness probe of the manifests: GET /healthz on the metrics port, from another namespace', async () => {
    for (let i = 0; i < NODES; i++) {
      const url = `http://${nodeAddress(i)}:${PROBED.COAP_PSK_METRICS_PORT}/healthz`;
      const res = await cluster.exec(cluster.lb, process.execPath, ['-e', `fetch(${JSON.stringify(url)}).then((r) => console.log(r.status))`]);
      expect(res.stdout.trim(), res.stderr).toBe('200');
    }
  });

  it('coap-client-openssl in the devices namespace handshakes through the VIP and gets /whoami (jhash affinity)', async () => {
    await cluster.setBalancer('affinity', [0, 1, 2]);
    for (const serial of ['SN-lb-1', 'SN-lb-2', 'SN-lb-3']) {
      const res = await coapClient({
        impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: `coaps://${cluster.vip}/whoami`, netns: cluster.devices,
      });
      expect(res.ok, res.stdout + res.stderr).toBe(true);
      expect(res.payload).toBe(serial);
    }
  });

  it('round-robin without CID: a device whose flow moves to another node loses its session, and handshakes again', async () => {
    await cluster.setBalancer('round-robin', [0, 1, 2]);
    const serial = 'SN-rr-1';
    expect((await fleet.connect('rr', serial, deviceKey(serial))).ok).toBe(true);
    const first = await fleet.get('rr', ['node']);
    expect(first.ok).toBe(true);
    // A NAT rebinding: the same session from a new source port is a new flow, and numgen
    // sends every new flow to the next node, which has no session for it and drops the record.
    expect((await fleet.rebind('rr')).ok).toBe(true);
    const after = await fleet.get('rr', ['node']);
    expect(after).toMatchObject({ ok: false, error: 'timeout' });
    // The device's way out today: a new handshake, on whichever node the flow lands.
    expect((await fleet.connect('rr', serial, deviceKey(serial))).ok).toBe(true);
    expect(await fleet.get('rr', ['whoami'])).toMatchObject({ ok: true, payload: serial });
  });

  it('round-robin with CID: the rebound device keeps its session; the node its flow reaches forwards to the owner, whose replies come back through it', async () => {
    await expectRebindKeepsSession(cluster, fleet, nodes, 'SN-cid-rr');
  });

  it('forwarded records from a namespace without the cluster key are refused and counted, never served', async () => {
    const target = 2;
    const before = await metrics(target);
    const wrongKey = deriveClusterKey(Buffer.alloc(32, 0x77), 'forward'); // not the cluster's
    const now = Date.now();
    const tls12Cid = Buffer.concat([Buffer.from('19fefd00010000000000aa', 'hex'), Buffer.alloc(6, 0x42), Buffer.from('0010', 'hex'), Buffer.alloc(16, 0x99)]);
    const forged = [
      encodeForwardMessage(wrongKey, { type: ForwardType.FORWARD, senderNode: 0, timestampMs: now, device: { address: DEVICES_ADDRESS, port: 40000 }, payload: tls12Cid }),
      encodeForwardMessage(wrongKey, { type: ForwardType.BACKWARD, senderNode: 1, timestampMs: now, device: { address: DEVICES_ADDRESS, port: 40000 }, payload: tls12Cid }),
      encodeForwardMessage(wrongKey, { type: ForwardType.HELLO, senderNode: 9, timestampMs: now, payload: Buffer.alloc(0) }),
      tls12Cid, // a bare DTLS record
    ];
    const sender = `const s = require('node:dgram').createSocket('udp4');
      const all = ${JSON.stringify(forged.map((b) => b.toString('hex')))};
      let n = 0;
      for (const hex of all) s.send(Buffer.from(hex, 'hex'), ${CLUSTER_PORT}, ${JSON.stringify(nodeAddress(target))}, () => { if (++n === all.length) s.close(); });`;
    const res = await cluster.exec(cluster.devices, process.execPath, ['-e', sender]);
    expect(res.exitCode, res.stderr).toBe(0);
    const refused = (text: string) => series(text, 'coap_psk_cluster_refused_total', { reason: 'unauthentic' });
    let after = before;
    for (let i = 0; i < 50 && refused(after) < refused(before) + forged.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await metrics(target);
    }
    expect(refused(after) - refused(before)).toBe(forged.length);
    // Nothing of it reached the DTLS server, was sent on to a device, or was taken for a peer.
    for (const [name, labels] of [['coap_psk_datagrams_total', {}], ['coap_psk_cluster_accepted_total', { type: 'forward' }], ['coap_psk_cluster_accepted_total', { type: 'backward' }]] as const) {
      expect(series(after, name, labels), `${name} ${JSON.stringify(labels)}`).toBe(series(before, name, labels));
    }
    const nodeLog = await nodes[target].waitForLog('"node":9', 300);
    expect(nodeLog).not.toContain('"node":9');
  });

  it('a node that stops loses only its own sessions; its devices handshake again on another node (jhash affinity)', async () => {
    await cluster.setBalancer('affinity', [0, 1, 2]);
    const home = new Map<string, string>(); // device -> node name
    const perNode = new Map<string, number>();
    for (let d = 0; d < MAX_DEVICES && ![0, 1, 2].every((i) => (perNode.get(nodeName(i)) ?? 0) >= 2); d++) {
      const serial = `SN-aff-${d}`;
      expect((await fleet.connect(serial, serial, deviceKey(serial))).ok).toBe(true);
      const who = await fleet.get(serial, ['whoami']);
      expect(who).toMatchObject({ ok: true, payload: serial });
      const node = (await fleet.get(serial, ['node'])).payload!;
      home.set(serial, node);
      perNode.set(node, (perNode.get(node) ?? 0) + 1);
    }
    expect([...perNode.keys()].sort()).toEqual([nodeName(0), nodeName(1), nodeName(2)]);

    // Node 1 goes away (SIGTERM, as Kubernetes stops a pod), and the load balancer stops sending
    // new flows to it, as kube-proxy does once the endpoint is gone.
    const victim = 1;
    expect(await nodes[victim].stop()).toBe(0);
    await cluster.setBalancer('affinity', [0, 2]);

    for (const [serial, node] of home) {
      const again = await fleet.get(serial, ['node']);
      if (node !== nodeName(victim)) {
        // Same session, same node: nothing happened to it.
        expect(again, serial).toMatchObject({ ok: true, payload: node });
        continue;
      }
      expect(again.ok, serial).toBe(false); // close_notify arrived at shutdown, or no answer
      expect((await fleet.connect(serial, serial, deviceKey(serial))).ok).toBe(true);
      const moved = await fleet.get(serial, ['node']);
      expect(moved.ok).toBe(true);
      expect([nodeName(0), nodeName(2)]).toContain(moved.payload);
      expect(await fleet.get(serial, ['whoami'])).toMatchObject({ ok: true, payload: serial });
    }
  });
});
