/**
 * What the namespace cluster tests (load-balancer.test.ts, cluster-discovery.test.ts) share:
 * starting the `coap-psk serve` nodes with cluster settings, reading their /metrics from the load
 * balancer's namespace, and the round-robin CID check (a rebound device keeps its session).
 */
import { expect } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeAddress, type NetnsCluster } from '../helpers/netns.js';
import { sample } from '../helpers/prometheus.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey } from '../interop/fixture.js';
import type { Fleet } from './fleet.js';

const ROUTES = fileURLToPath(new URL('./node-routes.ts', import.meta.url));
export const CLUSTER_PORT = 5685;
/** The metrics listener as deploy/kubernetes/statefulset.yaml sets it, so the kubelet can probe it. */
export const PROBED = { COAP_PSK_METRICS_PORT: '9464', COAP_PSK_METRICS_HOST: '0.0.0.0' };
/** New source ports tried until one reaches another node (round-robin: the next flow does). */
const MAX_REBINDS = 6;

export const nodeName = (i: number) => `node-${i}`;
/** Devices hold their key as 32 hex characters (libcoap -k style), so the nodes run in `hex` mode. */
export const deviceKey = (serial: string) => Buffer.from(expectedHexKey(serial), 'latin1');

/**
 * One node per namespace of the cluster: node id i, the cluster port, the cluster key file (in
 * `keyDir`); `env` and `args` add the peers' settings (static list or DNS name) and the rest.
 * Each node has a runtime directory of its own (in `keyDir`), as a pod has: the takeover channel's
 * socket is named by the listener, the same on every node, and a Unix socket's path is not
 * confined to a network namespace.
 */
export async function startClusterNodes(cluster: NetnsCluster, token: TestToken, keyDir: string, env: Record<string, string>, args: string[] = []): Promise<ServerProcess[]> {
  // The cluster key: a file every node reads (a Secret mounted as a file in Kubernetes).
  const keyFile = join(keyDir, 'cluster.key');
  writeFileSync(keyFile, `${'3c'.repeat(32)}\n`, { mode: 0o600 }); // test key only
  // One after the other: the nodes share one SoftHSM token here (a pod has an HSM of its own),
  // and once, with the three started at once and each opening a ticket key besides, a node
  // found no token ("PKCS#11 token not found", CI on Node 20); the cause is not established.
  const nodes: ServerProcess[] = [];
  try {
    for (const [i, ns] of cluster.nodes.entries()) {
      const runtimeDir = join(keyDir, `run-${i}`);
      mkdirSync(runtimeDir, { mode: 0o700, recursive: true });
      nodes.push(await startServerProcess({
        RUNTIME_DIRECTORY: runtimeDir,
        ...token.env, ...PROBED, COAP_PSK_KEY_ENCODING: 'hex', COAP_PSK_LOG_LEVEL: 'info', COAP_PSK_TEST_NODE: nodeName(i),
        COAP_PSK_CLUSTER_NODE_ID: String(i), COAP_PSK_CLUSTER_PORT: String(CLUSTER_PORT), COAP_PSK_CLUSTER_KEY_FILE: keyFile, ...env,
      }, ['--routes', ROUTES, ...args], { netns: ns }));
    }
  } catch (e) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw e;
  }
  return nodes;
}

/** The teardown of what beforeAll made; each part may be missing (a beforeAll that failed). */
export async function stopClusterNodes(parts: { fleet?: Fleet; nodes: readonly ServerProcess[]; cluster?: NetnsCluster; token?: TestToken; keyDir: string }): Promise<void> {
  await parts.fleet?.close();
  await Promise.all(parts.nodes.map((n) => n.stop()));
  await parts.cluster?.destroy();
  await parts.token?.cleanup();
  rmSync(parts.keyDir, { recursive: true, force: true });
}

/** A series' value in a Prometheus text exposition (0 when absent). */
export const series = (text: string, name: string, labels?: Record<string, string>): number => sample(text, name, labels) ?? 0;

export interface NodeMetrics {
  /** One node's /metrics, read from the load balancer's namespace. */
  text(i: number): Promise<string>;
  value(i: number, name: string, labels?: Record<string, string>): Promise<number>;
}

export function nodeMetrics(cluster: NetnsCluster): NodeMetrics {
  const text = async (i: number): Promise<string> => {
    const url = `http://${nodeAddress(i)}:${PROBED.COAP_PSK_METRICS_PORT}/metrics`;
    const res = await cluster.exec(cluster.lb, process.execPath, ['-e', `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t))`]);
    expect(res.exitCode, res.stderr).toBe(0);
    return res.stdout;
  };
  return { text, value: async (i, name, labels) => series(await text(i), name, labels) };
}

/**
 * Under round-robin, a CID device rebinds (new source ports) until a flow reaches a node other
 * than its owner: the owner answers every time, from the VIP, through the receiving node; one
 * handshake in all.
 */
export async function expectRebindKeepsSession(cluster: NetnsCluster, fleet: Fleet, nodes: readonly ServerProcess[], serial: string): Promise<void> {
  const metrics = nodeMetrics(cluster);
  const vip = `${cluster.vip}:${cluster.vipPort}`;
  await cluster.setBalancer('round-robin', [0, 1, 2]);
  expect((await fleet.connect('cid', serial, deviceKey(serial), { cid: true })).ok).toBe(true);
  const first = await fleet.get('cid', ['node']);
  expect(first).toMatchObject({ ok: true, from: vip });
  const owner = Number(first.payload!.slice('node-'.length));
  const others = [0, 1, 2].filter((i) => i !== owner);
  const forwardedByOthers = async () => (await Promise.all(others.map((i) => metrics.value(i, 'coap_psk_cluster_forwarded_total')))).reduce((a, b) => a + b, 0);
  expect(await forwardedByOthers()).toBe(0);

  let crossed = false;
  for (let i = 0; i < MAX_REBINDS && !crossed; i++) {
    expect((await fleet.rebind('cid')).ok).toBe(true);
    // The owner answers, and its reply reaches the device from the address it sent to (the
    // VIP): sent by the node that holds the flow's translation, the one that received it.
    expect(await fleet.get('cid', ['node'])).toMatchObject({ ok: true, payload: nodeName(owner), from: vip });
    crossed = (await forwardedByOthers()) > 0;
  }
  expect(crossed, `no new source port reached another node in ${MAX_REBINDS} tries`).toBe(true);
  expect(await fleet.get('cid', ['whoami'])).toMatchObject({ ok: true, payload: serial });
  const owned = await metrics.text(owner);
  expect(series(owned, 'coap_psk_cluster_accepted_total', { type: 'forward' })).toBeGreaterThan(0);
  expect(series(owned, 'coap_psk_cluster_backwarded_total')).toBeGreaterThan(0);
  expect(series(owned, 'coap_psk_cluster_forwarded_total')).toBe(0);
  // One handshake for the device in all: the session went on.
  await new Promise((r) => setTimeout(r, 300)); // the log's batching (src/log.ts): 200 ms
  const handshakes = nodes.flatMap((n) => n.log().split('\n')).filter((l) => l.includes('"handshake ok"') && l.includes(`"identity":"${serial}"`));
  expect(handshakes).toHaveLength(1);
}
