/**
 * Cluster nodes that use all their cores: three `coap-psk serve --workers 2` nodes behind the
 * kernel's round-robin UDP load balancing (nftables DNAT, test/helpers/netns.ts), as in
 * load-balancer.test.ts. Every worker's CIDs name its node and its worker (docs/cluster.md), so a
 * record that reaches the wrong process, on another node or on the owner node, finds its owner:
 *
 *  - another node's worker FORWARDs it to the owner node's cluster port; the worker of the owner
 *    node that the kernel hands it to serves it if it owns the session, else passes it to the
 *    owning worker through its primary (the second hop), with the forwarding node as the path of
 *    the replies, which go back as BACKWARDs and reach the device from the VIP it sent to;
 *  - the owner node's other worker passes it through the primary (one hop).
 *
 * Devices rebind (new source ports, new flows: round-robin sends each to the next node) and are
 * answered every time by the same worker of the same node, with one handshake per device.
 * Which path a request took is read from the counters: coap_psk_cluster_forwarded_total on the
 * node that forwarded it, coap_psk_cid_forwarded_total{worker} on the owner node, summed by each
 * node's primary over its workers.
 *
 * A peer node's cluster messages all come from one address and port, so the kernel hands them to
 * one worker of a node; the test first waits until every worker of every node knows every other
 * node (the workers share the HELLOs they take, src/cluster/node-routing.ts). Last, a worker is
 * killed: its replacement takes the same cluster socket, knows the peers, and its node forwards.
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
import { CLUSTER_PORT, deviceKey, nodeName, PROBED, series, startClusterNodes, stopClusterNodes } from './netns-nodes.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';

const NODES = 3;
const WORKERS = 2;
/** Devices connected until one node holds a session on each of its workers (each ~1/2 per device). */
const MAX_DEVICES = 16;
/**
 * Rebinds, alternating between the two devices: round-robin visits every (device, node) pair in
 * 6, and sends every third new flow to the owner node, where it reaches the other worker with
 * probability 1/2: missed in 30 with probability 2^-10.
 */
const MAX_REBINDS = 30;

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`cluster tests skipped: ${unavailable}`);

interface LogLine {
  msg?: string;
  role?: string;
  pid?: number;
  worker?: number;
  workerPid?: number;
  node?: number;
}

interface Where {
  node: number;
  worker: number;
}

/** GET /where's payload, `node-1/2`. */
function parseWhere(payload: string | undefined): Where {
  const m = /^node-(\d+)\/(\d+)$/.exec(payload ?? '');
  expect(m, `GET /where answered ${payload}`).not.toBeNull();
  return { node: Number(m![1]), worker: Number(m![2]) };
}

describe.skipIf(unavailable !== undefined || NO_REUSE_PORT)(`3 cluster nodes of --workers 2 behind nftables round-robin DNAT${SKIP_REASON}`, { timeout: 90_000 }, () => {
  let cluster: NetnsCluster;
  let token: TestToken;
  let fleet: Fleet;
  const nodes: ServerProcess[] = [];
  const keyDir = mkdtempSync(join(tmpdir(), 'cluster-key-'));
  /** The two devices whose sessions one node holds, one on each worker (set by the second test). */
  let pair: [string, string] | undefined;
  const owners = new Map<string, Where>();

  /** Every node's /metrics (its primary's sum over its workers), read in one go from the load balancer's namespace. */
  const scrape = async (): Promise<string[]> => {
    const urls = cluster.nodes.map((_, i) => `http://${nodeAddress(i)}:${PROBED.COAP_PSK_METRICS_PORT}/metrics`);
    const script = `Promise.all(${JSON.stringify(urls)}.map((u) => fetch(u).then((r) => r.text()))).then((t) => process.stdout.write(JSON.stringify(t)))`;
    const res = await cluster.exec(cluster.lb, process.execPath, ['-e', script]);
    expect(res.exitCode, res.stderr).toBe(0);
    return JSON.parse(res.stdout) as string[];
  };

  const logLines = (i: number) => nodes[i]!.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  /** The 'cluster peer up' lines of node i (of its workers with process `pid`, if given), as "worker:peer". */
  const peersUp = (i: number, pid?: number): Set<string> =>
    new Set(logLines(i).filter((l) => l.msg === 'cluster peer up' && (pid === undefined || l.pid === pid)).map((l) => `${l.worker}:${l.node}`));
  /** Node i's worker processes as its primary announced them, the latest per worker. */
  const workerPids = (i: number): Map<number, number> =>
    new Map(logLines(i).filter((l) => l.role === 'primary' && l.msg === 'worker serving').map((l) => [l.worker!, l.workerPid!]));

  beforeAll(async () => {
    cluster = await createNetnsCluster({ nodes: NODES });
    token = await makeToken('cluster-workers');
    const peers = cluster.nodes.map((_, i) => `${i}=${nodeAddress(i)}:${CLUSTER_PORT}`).join(',');
    nodes.push(...(await startClusterNodes(cluster, token, keyDir, { COAP_PSK_CLUSTER_PEERS: peers, COAP_PSK_LOG_FORMAT: 'json' }, ['--workers', String(WORKERS)])));
    fleet = startFleet(cluster);
  });

  afterAll(async () => {
    await stopClusterNodes({ fleet, nodes, cluster, token, keyDir });
  });

  it('every worker of every node learns every other node, though each peer\'s HELLOs reach one worker only', async () => {
    const expected = (i: number) => [1, 2].flatMap((w) => [0, 1, 2].filter((j) => j !== i).map((j) => `${w}:${j}`)).sort();
    // Nodes started one after the other: the later ones' HELLOs are answered at once (no 5 s wait).
    await until(() => [0, 1, 2].every((i) => expected(i).every((p) => peersUp(i).has(p))), 15_000).catch(() => {});
    for (let i = 0; i < NODES; i++) expect([...peersUp(i)].sort(), `node ${i}`).toEqual(expected(i));
  });

  it('a CID device whose flow moves is answered by the same worker of the same node: by another node (FORWARD, then the primary to the owning worker) and by the owner node\'s other worker', async () => {
    const vip = `${cluster.vip}:${cluster.vipPort}`;
    await cluster.setBalancer('round-robin', [0, 1, 2]);
    // Sessions until one node holds two, one on each worker: a peer's FORWARDs all reach one
    // worker of that node, so for one of the two it is not the owner and the second hop happens.
    for (let d = 0; d < MAX_DEVICES && !pair; d++) {
      const device = `nw-${d}`;
      expect((await fleet.connect(device, `SN-nw-${d}`, deviceKey(`SN-nw-${d}`), { cid: true })).ok).toBe(true);
      const where = await fleet.get(device, ['where']);
      expect(where).toMatchObject({ ok: true, from: vip });
      const here = parseWhere(where.payload);
      const sibling = [...owners].find(([, o]) => o.node === here.node && o.worker !== here.worker);
      owners.set(device, here);
      if (sibling) pair = [sibling[0], device];
    }
    expect(pair, `no node got sessions on both workers from ${MAX_DEVICES} devices`).toBeDefined();
    const owner = owners.get(pair![0])!.node;
    const others = [0, 1, 2].filter((i) => i !== owner);

    const paths = new Set<string>();
    let before = await scrape();
    for (let i = 0; i < MAX_REBINDS && !(paths.has('node, then worker') && paths.has('worker')); i++) {
      const device = pair![i % 2]!;
      const home = owners.get(device)!;
      expect((await fleet.rebind(device)).ok).toBe(true);
      // The owner answers, from the VIP the device sent to, whichever process its flow reached.
      expect(await fleet.get(device, ['where'])).toMatchObject({ ok: true, payload: `${nodeName(home.node)}/${home.worker}`, from: vip });
      const after = await scrape();
      const grew = (n: number, name: string, labels?: Record<string, string>) => series(after[n]!, name, labels) - series(before[n]!, name, labels);
      const forwardedBy = others.filter((n) => grew(n, 'coap_psk_cluster_forwarded_total') > 0);
      const handedBy = [1, 2].filter((w) => grew(owner, 'coap_psk_cid_forwarded_total', { worker: String(w) }) > 0);
      expect(forwardedBy.length + handedBy.length, 'counted hops').toBeLessThanOrEqual(2);
      if (forwardedBy.length === 1) {
        // The node the flow reached forwarded the one request; the owner node took it and
        // sent the reply back through that node, which sent it on to the device.
        expect(grew(forwardedBy[0]!, 'coap_psk_cluster_forwarded_total')).toBe(1);
        expect(grew(owner, 'coap_psk_cluster_accepted_total', { type: 'forward' })).toBe(1);
        expect(grew(owner, 'coap_psk_cluster_backwarded_total')).toBeGreaterThanOrEqual(1);
        expect(grew(forwardedBy[0]!, 'coap_psk_cluster_accepted_total', { type: 'backward' })).toBeGreaterThanOrEqual(1);
      }
      // A hand-over is by the worker that does not own the session, once.
      expect(handedBy.every((w) => w !== home.worker && grew(owner, 'coap_psk_cid_forwarded_total', { worker: String(w) }) === 1)).toBe(true);
      paths.add(forwardedBy.length === 1 ? (handedBy.length === 1 ? 'node, then worker' : 'node') : handedBy.length === 1 ? 'worker' : 'owner');
      before = after;
    }
    expect(paths, `paths seen: ${[...paths].join('; ')}`).toContain('node, then worker');
    expect(paths, `paths seen: ${[...paths].join('; ')}`).toContain('worker');
    // Nothing was forwarded by the owner node, nor handed over on the other nodes.
    const last = await scrape();
    expect(series(last[owner]!, 'coap_psk_cluster_forwarded_total')).toBe(0);
    for (const n of others) for (const w of [1, 2]) expect(series(last[n]!, 'coap_psk_cid_forwarded_total', { worker: String(w) })).toBe(0);

    // One handshake per device in all: the sessions went on.
    await new Promise((r) => setTimeout(r, 300)); // the log's batching (src/log.ts): 200 ms
    for (const device of pair!) {
      const serial = `SN-${device}`;
      expect(await fleet.get(device, ['whoami'])).toMatchObject({ ok: true, payload: serial });
      const handshakes = nodes.flatMap((n) => n.log().split('\n')).filter((l) => l.includes('"handshake ok"') && l.includes(`"identity":"${serial}"`));
      expect(handshakes, serial).toHaveLength(1);
    }
  });
  it('a worker that dies is started again on its cluster socket, learns the peers, and its node forwards again', async () => {
    expect(pair).toBeDefined();
    const victimNode = [0, 1, 2].find((i) => i !== owners.get(pair![0])!.node)!;
    const old = workerPids(victimNode).get(1)!;
    expect(old).toBeGreaterThan(0);
    process.kill(old, 'SIGKILL');
    await until(() => (workerPids(victimNode).get(1) ?? old) !== old, 20_000);
    const replacement = workerPids(victimNode).get(1)!;
    // It knows both other nodes: the HELLOs its node took before, kept by the primary, or the next ones.
    const peersOf = [0, 1, 2].filter((j) => j !== victimNode).map((j) => `1:${j}`);
    await until(() => peersOf.every((p) => peersUp(victimNode, replacement).has(p)), 15_000).catch(() => {});
    expect([...peersUp(victimNode, replacement)].sort()).toEqual(peersOf);

    // A device's new flows reach that node again within three (round-robin): it forwards them.
    const device = pair![0];
    const home = owners.get(device)!;
    const forwarded = async () => series((await scrape())[victimNode]!, 'coap_psk_cluster_forwarded_total');
    const before = await forwarded();
    let after = before;
    for (let i = 0; i < 6 && after === before; i++) {
      expect((await fleet.rebind(device)).ok).toBe(true);
      expect(await fleet.get(device, ['where'])).toMatchObject({ ok: true, payload: `${nodeName(home.node)}/${home.worker}`, from: `${cluster.vip}:${cluster.vipPort}` });
      after = await forwarded();
    }
    expect(after).toBeGreaterThan(before);
  });
});
