/**
 * Graceful restart of a cluster node (docs/cluster.md, "Graceful restart per pod"): two
 * `coap-psk serve` nodes of one process behind nftables DNAT (test/helpers/netns.ts), as in
 * load-balancer.test.ts. Node 0 holds the sessions of two CID devices: one reaches it directly,
 * the other (rebound while the balancer sends new flows to node 1 only) through node 1, which
 * FORWARDs its records to node 0 and sends node 0's BACKWARDs on to it. First a successor that
 * binds the cluster port beside node 0, says hello, receives the sealed state and dies before
 * `ready`: node 0 serves on, both devices answered, the forwarded one too. Then node 0 gets SIGUSR2: its
 * successor (`serve --takeover`, same node id, same cluster key) binds the cluster port beside
 * it, takes the sessions and the old process's peer table, and the old one exits 0. Then both
 * devices' next requests are answered by node 0, the forwarded one through node 1 at once (the
 * successor knows node 1 from the hand-over, not from a HELLO 5 s later), with one handshake per
 * device in all.
 *
 * Needs root (namespaces) and dgram reusePort (Node ≥ 22.12): skipped otherwise; CI runs it on
 * Node 24.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetnsCluster, netnsUnavailable, nodeAddress, type NetnsCluster } from '../helpers/netns.js';
import type { ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { until } from '../helpers/wait.js';
import { makeToken } from '../interop/fixture.js';
import { startFleet, type Fleet } from './fleet.js';
import { CLUSTER_PORT, deviceKey, nodeMetrics, nodeName, series, startClusterNodes, stopClusterNodes } from './netns-nodes.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`cluster tests skipped: ${unavailable}`);

const DIRECT = 'SN-tk-direct';
const VIA_B = 'SN-tk-via-1';

/** Whether a process still runs (signal 0 only asks). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(unavailable !== undefined || NO_REUSE_PORT)(`graceful restart of a cluster node behind nftables DNAT${SKIP_REASON}`, { timeout: 60_000 }, () => {
  let cluster: NetnsCluster;
  let token: TestToken;
  let fleet: Fleet;
  const nodes: ServerProcess[] = [];
  const keyDir = mkdtempSync(join(tmpdir(), 'cluster-key-'));
  let successor: number | undefined;

  beforeAll(async () => {
    cluster = await createNetnsCluster({ nodes: 2 });
    token = await makeToken('cluster-takeover');
    const peers = cluster.nodes.map((_, i) => `${i}=${nodeAddress(i)}:${CLUSTER_PORT}`).join(',');
    nodes.push(...(await startClusterNodes(cluster, token, keyDir, { COAP_PSK_CLUSTER_PEERS: peers, COAP_PSK_LOG_FORMAT: 'json' })));
    fleet = startFleet(cluster);
  });

  afterAll(async () => {
    // The successor is no child of the test: its parent was the process it replaced.
    if (successor !== undefined && alive(successor)) {
      process.kill(successor, 'SIGTERM');
      await until(() => !alive(successor!), 10_000).catch(() => process.kill(successor!, 'SIGKILL'));
    }
    await stopClusterNodes({ fleet, nodes, cluster, token, keyDir });
  });

  const vip = () => `${cluster.vip}:${cluster.vipPort}`;
  const everyDeviceOnNode0 = async () => {
    for (const serial of [DIRECT, VIA_B]) {
      expect(await fleet.get(serial, ['node']), serial).toMatchObject({ ok: true, payload: nodeName(0), from: vip() });
      expect(await fleet.get(serial, ['whoami']), serial).toMatchObject({ ok: true, payload: serial });
    }
  };

  it('a successor that dies half-way (cluster port bound beside, state received, no ready) leaves the node serving and forwarding', async () => {
    const metrics = nodeMetrics(cluster);
    // Static peers are up once their first HELLO came (the second node's start is answered at once).
    await until(() => nodes[0]!.log().includes('"msg":"cluster peer up"') && nodes[1]!.log().includes('"msg":"cluster peer up"'), 10_000).catch(() => {});
    await cluster.setBalancer('round-robin', [0]);
    for (const serial of [DIRECT, VIA_B]) {
      expect((await fleet.connect(serial, serial, deviceKey(serial), { cid: true })).ok).toBe(true);
      expect(await fleet.get(serial, ['node'])).toMatchObject({ ok: true, payload: nodeName(0), from: vip() });
    }
    // New flows go to node 1 from here; a device's existing flow keeps its node (conntrack).
    await cluster.setBalancer('round-robin', [1]);
    expect((await fleet.rebind(VIA_B)).ok).toBe(true);
    expect(await fleet.get(VIA_B, ['node'])).toMatchObject({ ok: true, payload: nodeName(0), from: vip() });
    const forwarded = await metrics.value(1, 'coap_psk_cluster_forwarded_total');
    expect(forwarded).toBeGreaterThan(0);

    // As a successor does: the cluster port with SO_REUSEPORT (node 0 bound it so), then hello.
    const path = join(keyDir, 'run-0', 'takeover-0.0.0.0-5684.sock');
    const quitter = await cluster.exec(cluster.nodes[0]!, process.execPath, ['-e', `
      const u = require('node:dgram').createSocket({ type: 'udp4', reusePort: true });
      u.on('error', () => process.exit(5));
      u.bind(${CLUSTER_PORT}, '0.0.0.0', () => {
        const s = require('node:net').connect(${JSON.stringify(path)});
        const hello = Buffer.concat([Buffer.from([1, 0, 0, 0, 33, 1]), require('node:crypto').randomBytes(32)]);
        s.on('connect', () => s.write(hello));
        s.on('data', (d) => { if (d[0] === 2) process.exit(3); });
      });
      setTimeout(() => process.exit(4), 10000);
    `]);
    expect(quitter.exitCode, quitter.stderr).toBe(3); // it bound the cluster port and received the state
    expect(await nodes[0]!.waitForLog('takeover failed; still serving', 5000)).toContain('takeover failed; still serving');
    expect(nodes[0]!.child.exitCode).toBeNull();
    await everyDeviceOnNode0();
    expect(await metrics.value(1, 'coap_psk_cluster_forwarded_total')).toBeGreaterThan(forwarded);
  });

  it('SIGUSR2 on a node: its successor serves every session, those forwarded through the other node too, without a handshake; the old process exits 0', async () => {
    const metrics = nodeMetrics(cluster);
    const forwardedBefore = await metrics.value(1, 'coap_psk_cluster_forwarded_total');

    const old = nodes[0]!;
    const exited = new Promise<number | null | 'still running'>((done) => {
      const bound = setTimeout(() => done('still running'), 20_000);
      old.child.once('exit', (code) => {
        clearTimeout(bound);
        done(code);
      });
    });
    old.child.kill('SIGUSR2');
    expect(await exited, old.log().slice(-3000)).toBe(0);
    // The successor writes to the old process's stderr, which it inherited.
    const log = await old.waitForLog('"msg":"takeover complete"', 5000);
    const started = /\{[^\n]*"msg":"SIGUSR2: starting the successor[^\n]*\}/.exec(log);
    expect(started, 'no successor started').not.toBeNull();
    successor = (JSON.parse(started![0]) as { pid: number }).pid;
    expect(log).toMatch(/"sessions":2[^\n]*"msg":"takeover complete"/);
    // It knew node 1 from the hand-over, before it said ready.
    expect(log).toMatch(/"peers":1[^\n]*"msg":"takeover: the cluster peers of the old process entered"/);

    await everyDeviceOnNode0();
    // Node 1 forwarded the second device's records to node 0's successor (its counters start at 0).
    expect(await metrics.value(1, 'coap_psk_cluster_forwarded_total')).toBeGreaterThan(forwardedBefore);
    const after = await metrics.text(0);
    expect(series(after, 'coap_psk_cluster_accepted_total', { type: 'forward' })).toBeGreaterThan(0);
    expect(series(after, 'coap_psk_cluster_backwarded_total')).toBeGreaterThan(0);
    expect(series(after, 'coap_psk_cluster_dropped_total', { reason: 'backward_unknown_node' })).toBe(0);
    expect(alive(successor)).toBe(true);

    // One handshake per device in all: the sessions went on.
    await new Promise((r) => setTimeout(r, 300)); // the log's batching (src/log.ts): 200 ms
    for (const serial of [DIRECT, VIA_B]) {
      const handshakes = nodes.flatMap((n) => n.log().split('\n')).filter((l) => l.includes('"handshake ok"') && l.includes(`"identity":"${serial}"`));
      expect(handshakes, serial).toHaveLength(1);
    }
  });
});
