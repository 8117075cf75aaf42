/**
 * The cluster of load-balancer.test.ts (three `coap-psk serve` nodes in network namespaces
 * behind nftables DNAT), with what a Kubernetes deployment uses instead of a static peer list:
 *  - peers found by DNS (`--cluster-dns`): a headless Service gives one A record per pod. Here
 *    each node namespace gets its own /etc/hosts (`ip netns exec` bind-mounts
 *    /etc/netns/<ns>/hosts over it), one line per node address under one name; glibc's files
 *    lookup returns all of them to node's dns.lookup({ all: true }). Under round-robin, a CID
 *    device whose flow moves keeps its session through forwarding to peers known only that way;
 *  - tickets across nodes: every node derives its ticket key from the same HSM key
 *    (`--ticket-key-label`, one SoftHSM token), so a ticket the device got from a node that then
 *    stopped resumes on another node without a full handshake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetnsCluster, netnsUnavailable, nodeAddress, type NetnsCluster } from '../helpers/netns.js';
import type { ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { makeToken, TEST_KEY_LABEL, TEST_MASTER_HEX } from '../interop/fixture.js';
import { startFleet, type Fleet } from './fleet.js';
import { deviceKey, expectRebindKeepsSession, nodeMetrics, startClusterNodes, stopClusterNodes } from './netns-nodes.js';

const NODES = 3;
/** The headless Service's name in deploy/kubernetes (docs/cluster.md). */
const SERVICE = 'coap-psk-nodes';
/** First HELLOs go out at start and are answered at once; the 5 s period is the fallback. */
const PEERS_UP_MS = 12_000;
const TICKET_KEY = { label: 'psk-ticket', hex: '0f0e0d0c0b0a09080706050403020100' }; // test key only
const NETNS_ETC = '/etc/netns';

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`cluster tests skipped: ${unavailable}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The node ids a node's log says came up as peers ("cluster peer up", src/cluster/node-routing.ts). */
const peersUp = (log: string): Set<number> =>
  new Set(log.split('\n').filter((l) => l.includes('"cluster peer up"')).map((l) => (JSON.parse(l) as { node: number }).node));

describe.skipIf(unavailable !== undefined)('a cluster of 3 nodes found by DNS, sharing an HSM ticket key', { timeout: 60_000 }, () => {
  let cluster: NetnsCluster;
  let token: TestToken;
  let fleet: Fleet;
  const nodes: ServerProcess[] = [];
  const keyDir = mkdtempSync(join(tmpdir(), 'cluster-key-'));
  const netnsEtcExisted = existsSync(NETNS_ETC);
  const hostsDirs: string[] = [];

  const byKind = (i: number, kind: string) => nodeMetrics(cluster).value(i, 'coap_psk_handshakes_by_kind_total', { kind });

  /**
   * openssl s_client in the devices namespace, through the VIP; counts its "New"/"Reused" lines.
   * Its -psk is the key's bytes in hex: the device's key is 32 hex characters, as for the fleet.
   */
  const sClient = async (serial: string, args: string[]) => {
    const res = await cluster.exec(cluster.devices, 'openssl', [
      's_client', '-dtls1_2', '-connect', `${cluster.vip}:${cluster.vipPort}`, '-psk_identity', serial,
      '-psk', deviceKey(serial).toString('hex'), // test key only; the nodes run in `hex` mode
      '-cipher', 'PSK-AES128-CCM8', ...args,
    ]);
    return { ...res, reused: (res.stdout.match(/^Reused, TLSv1\.2, /gm) ?? []).length, fresh: (res.stdout.match(/^New, TLSv1\.2, /gm) ?? []).length };
  };

  beforeAll(async () => {
    cluster = await createNetnsCluster({ nodes: NODES });
    // The headless Service's A records, one per node, in each node namespace's own /etc/hosts
    // (read by `ip netns exec` when it starts the node, so written before the nodes start).
    const hosts = ['127.0.0.1 localhost', ...cluster.nodes.map((_, i) => `${nodeAddress(i)} ${SERVICE}`), ''].join('\n');
    for (const ns of cluster.nodes) {
      const dir = join(NETNS_ETC, ns);
      hostsDirs.push(dir);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'hosts'), hosts);
    }
    token = await makeToken('cluster-discovery', [{ label: TEST_KEY_LABEL, hex: TEST_MASTER_HEX }, TICKET_KEY]);
    // No --cluster-peers: the nodes know each other only through the name.
    nodes.push(...(await startClusterNodes(cluster, token, keyDir, {}, ['--cluster-dns', SERVICE, '--ticket-key-label', TICKET_KEY.label])));
    fleet = startFleet(cluster);
  });

  afterAll(async () => {
    await stopClusterNodes({ fleet, nodes, cluster, token, keyDir });
    for (const dir of hostsDirs) rmSync(dir, { recursive: true, force: true });
    if (!netnsEtcExisted) {
      try {
        rmdirSync(NETNS_ETC);
      } catch {
        // not empty: another run's namespaces use it
      }
    }
  });

  it('round-robin with CID and peers found by DNS only: the rebound device keeps its session through forwarding to its owner', async () => {
    // No static peers: each node knows the others only from the name's addresses and their HELLOs.
    for (const n of nodes) expect(await n.waitForLog('"cluster forwarding on"')).toMatch(new RegExp(`"peers":0,[^\\n]*"dns":"${SERVICE}"`));
    for (let i = 0; i < NODES; i++) {
      const others = [0, 1, 2].filter((j) => j !== i);
      for (let waited = 0; waited < PEERS_UP_MS && !others.every((j) => peersUp(nodes[i].log()).has(j)); waited += 100) await sleep(100);
      expect([...peersUp(nodes[i].log())].sort(), `node ${i}'s peers`).toEqual(others);
    }

    await expectRebindKeepsSession(cluster, fleet, nodes, 'SN-dns-cid');
  });

  it('a ticket from a node that then stops resumes on another node without a full handshake (jhash affinity)', async () => {
    await cluster.setBalancer('affinity', [0, 1, 2]);
    const serial = 'SN-ticket-1';
    const ticketFile = join(keyDir, 'ticket.pem');
    const fullBefore = await Promise.all([0, 1, 2].map((i) => byKind(i, 'full')));
    const got = await sClient(serial, ['-sess_out', ticketFile]);
    expect(got.fresh, got.stdout + got.stderr).toBe(1);
    const fullAfter = await Promise.all([0, 1, 2].map((i) => byKind(i, 'full')));
    const issuers = [0, 1, 2].filter((i) => fullAfter[i] > fullBefore[i]);
    expect(issuers).toHaveLength(1);
    const issuer = issuers[0];

    // The issuing node goes away (SIGTERM) and the load balancer stops sending flows to it.
    expect(await nodes[issuer].stop()).toBe(0);
    const rest = [0, 1, 2].filter((i) => i !== issuer);
    await cluster.setBalancer('affinity', rest);

    const before = await Promise.all(rest.map(async (i) => ({ full: await byKind(i, 'full'), ticket: await byKind(i, 'resumed_ticket') })));
    const resumed = await sClient(serial, ['-sess_in', ticketFile]);
    expect(resumed.reused, resumed.stdout + resumed.stderr).toBe(1);
    const after = await Promise.all(rest.map(async (i) => ({ full: await byKind(i, 'full'), ticket: await byKind(i, 'resumed_ticket') })));
    // One node of the rest took the ticket; neither made a full handshake for it.
    expect(after.map((a, k) => a.ticket - before[k].ticket).sort()).toEqual([0, 1]);
    expect(after.map((a, k) => a.full - before[k].full)).toEqual([0, 0]);
  });
});
