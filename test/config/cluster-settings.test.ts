/**
 * The cluster settings issue 15 names, through the configuration (src/config/schema.ts):
 * `--node-id` / COAP_PSK_CLUSTER_NODE_ID / cluster.nodeId (else a StatefulSet hostname's
 * ordinal), `--cluster-port`, `--cluster-key-file`, `--cluster-peers`, `--cluster-dns`,
 * `--no-cluster-backward` / COAP_PSK_CLUSTER_BACKWARD / cluster.backward. Values that are wrong
 * in themselves fail here, with one line naming the setting and where it came from.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { printableConfig, resolveConfig, type ConfigSources } from '../../src/config/index.js';
import { UserError } from '../../src/errors.js';

const SOFTWARE = { COAP_PSK_MASTER_KEY_HEX: '00112233445566778899aabbccddeeff' }; // test key only
const dir = mkdtempSync(join(tmpdir(), 'cluster-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(sources: ConfigSources): string {
  try {
    resolveConfig({ hostname: 'laptop', ...sources, env: { ...SOFTWARE, ...sources.env } });
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('resolved');
}

describe('cluster settings', () => {
  it('are off by default: no port, no node id on a host without an ordinal, replies backwarded', () => {
    const c = resolveConfig({ env: SOFTWARE, hostname: 'laptop' });
    expect(c.cluster).toEqual({ port: undefined, nodeId: undefined, nodeIdOrigin: undefined, hostname: 'laptop', keyFile: undefined, peers: [], dns: undefined, backward: true });
    expect(printableConfig(c).cluster).toEqual({ port: null, nodeId: null, keyFile: null, peers: [], dns: null, backward: true });
  });

  it('come from the flags', () => {
    const c = resolveConfig({
      env: SOFTWARE,
      hostname: 'laptop',
      flags: { nodeId: '2', clusterPort: '5685', clusterKeyFile: '/run/secrets/cluster/key', clusterPeers: '0=10.0.0.5:5685,1=[fd00::1]:5685', clusterDns: 'coap-psk-nodes', clusterBackward: false },
    });
    expect(c.cluster).toMatchObject({
      port: 5685, nodeId: 2, nodeIdOrigin: '--node-id', keyFile: '/run/secrets/cluster/key', dns: 'coap-psk-nodes', backward: false,
      peers: [{ nodeId: 0, host: '10.0.0.5', port: 5685 }, { nodeId: 1, host: 'fd00::1', port: 5685 }],
    });
    expect(printableConfig(c).cluster).toMatchObject({ peers: ['0=10.0.0.5:5685', '1=[fd00::1]:5685'] });
  });

  it('come from the environment', () => {
    const c = resolveConfig({
      hostname: 'laptop',
      env: {
        ...SOFTWARE, COAP_PSK_CLUSTER_NODE_ID: '7', COAP_PSK_CLUSTER_PORT: '6000', COAP_PSK_CLUSTER_KEY_FILE: '/k',
        COAP_PSK_CLUSTER_PEERS: '8=coap-psk-8.coap-psk-nodes:6000', COAP_PSK_CLUSTER_DNS: 'nodes.example', COAP_PSK_CLUSTER_BACKWARD: 'false',
      },
    });
    expect(c.cluster).toMatchObject({ port: 6000, nodeId: 7, nodeIdOrigin: 'COAP_PSK_CLUSTER_NODE_ID', keyFile: '/k', dns: 'nodes.example', backward: false });
    expect(c.cluster.peers).toEqual([{ nodeId: 8, host: 'coap-psk-8.coap-psk-nodes', port: 6000 }]);
  });

  it('come from the config file, peers as a list or as one string', () => {
    const yaml = join(dir, 'cluster.yaml');
    writeFileSync(yaml, 'cluster:\n  nodeId: 3\n  port: 5685\n  keyFile: /k\n  peers: ["0=10.0.0.5:5685", "1=10.0.0.6:5685"]\n  backward: false\n');
    const c = resolveConfig({ env: SOFTWARE, file: yaml, hostname: 'laptop' });
    expect(c.cluster).toMatchObject({ nodeId: 3, nodeIdOrigin: yaml, port: 5685, backward: false });
    expect(c.cluster.peers.map((p) => p.nodeId)).toEqual([0, 1]);
    writeFileSync(yaml, 'cluster:\n  peers: "0=10.0.0.5:5685, 1=10.0.0.6:5685"\n');
    expect(resolveConfig({ env: SOFTWARE, file: yaml }).cluster.peers.map((p) => p.host)).toEqual(['10.0.0.5', '10.0.0.6']);
  });

  it("take the node id from a StatefulSet pod's hostname when none is set, and a set one over it", () => {
    expect(resolveConfig({ env: SOFTWARE, hostname: 'coap-psk-4' }).cluster).toMatchObject({ nodeId: 4, nodeIdOrigin: 'hostname coap-psk-4' });
    expect(resolveConfig({ env: SOFTWARE, hostname: 'coap-psk-4', flags: { nodeId: '9' } }).cluster).toMatchObject({ nodeId: 9, nodeIdOrigin: '--node-id' });
    expect(resolveConfig({ env: SOFTWARE, hostname: 'coap-psk-7d9f8b6c4-x2x9z' }).cluster.nodeId).toBeUndefined();
  });

  it('refuse bad values with one line naming the setting', () => {
    expect(failure({ flags: { nodeId: '1024' } })).toBe('config cluster.nodeId (--node-id): must be ≤ 1023');
    expect(failure({ env: { COAP_PSK_CLUSTER_NODE_ID: 'two' } })).toBe('config cluster.nodeId (COAP_PSK_CLUSTER_NODE_ID): must be a number');
    expect(failure({ flags: { clusterPort: '0' } })).toBe('config cluster.port (--cluster-port): must be ≥ 1');
    expect(failure({ flags: { clusterPort: '70000' } })).toBe('config cluster.port (--cluster-port): must be ≤ 65535');
    expect(failure({ flags: { clusterPeers: '0=10.0.0.5:5685,0=10.0.0.6:5685' } })).toBe('config cluster.peers (--cluster-peers): entry 2 "0=10.0.0.6:5685": node id 0 listed twice');
    expect(failure({ env: { COAP_PSK_CLUSTER_PEERS: '1=10.0.0.5' } })).toBe('config cluster.peers (COAP_PSK_CLUSTER_PEERS): entry 1 "1=10.0.0.5": expected id=host:port (an IPv6 address in brackets)');
    expect(failure({ env: { COAP_PSK_CLUSTER_BACKWARD: 'maybe' } })).toBe('config cluster.backward (COAP_PSK_CLUSTER_BACKWARD): must be true or false');
  });
});
