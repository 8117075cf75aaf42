/**
 * What `serve` checks at start once node forwarding is on (src/cluster/node-settings.ts): no
 * more workers than the CID's 6-bit worker id names (63), a CID with room for the route, a node id, a readable cluster key of 32 bytes or
 * more; each failure is one line naming the setting, and never holds a byte of the key. The
 * last case runs the real binary, as an operator would (and `--takeover` on a node of workers).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig, type ConfigSources } from '../../src/config/index.js';
import { nodeSettings } from '../../src/cluster/node-settings.js';
import { UserError } from '../../src/errors.js';
import { runCli } from '../cli/run.js';

const SOFTWARE = { COAP_PSK_MASTER_KEY_HEX: '00112233445566778899aabbccddeeff' }; // test key only
const dir = mkdtempSync(join(tmpdir(), 'node-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY_HEX = '5c'.repeat(32); // test key only
const keyFile = join(dir, 'cluster.key');
writeFileSync(keyFile, `${KEY_HEX}\n`);
const shortKey = join(dir, 'short.key');
writeFileSync(shortKey, 'tooshort-secret');

const settingsOf = (sources: ConfigSources, workers = 1) =>
  nodeSettings(resolveConfig({ hostname: 'laptop', ...sources, env: { ...SOFTWARE, ...sources.env } }), workers);

async function failure(sources: ConfigSources, workers = 1): Promise<string> {
  const e = await settingsOf(sources, workers).then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  return (e as Error).message;
}

describe('node forwarding at start', () => {
  it('is off without a cluster port, whatever else is set', async () => {
    expect(await settingsOf({ flags: { nodeId: '1', clusterPeers: '2=10.0.0.2:5685' } })).toBeUndefined();
  });

  it('with a port, a node id and a key file: the key, the peers by address, backward by default', async () => {
    const s = await settingsOf({ flags: { clusterPort: '5685', nodeId: '1', clusterKeyFile: keyFile, clusterPeers: '0=10.0.0.1:5685,2=localhost:5686' } });
    expect(s).toMatchObject({ nodeId: 1, port: 5685, backward: true });
    expect(s!.key).toEqual(Buffer.from(KEY_HEX, 'hex'));
    expect(s!.peers).toEqual([{ nodeId: 0, host: '10.0.0.1', port: 5685 }, { nodeId: 2, host: expect.stringMatching(/^(127\.0\.0\.1|::1)$/), port: 5686 }]);
    const hostOrdinal = await nodeSettings(resolveConfig({ env: { ...SOFTWARE, COAP_PSK_CLUSTER_PORT: '5685', COAP_PSK_CLUSTER_KEY_FILE: keyFile, COAP_PSK_CLUSTER_BACKWARD: 'false' }, hostname: 'coap-psk-2' }), 1);
    expect(hostOrdinal).toMatchObject({ nodeId: 2, backward: false });
  });

  it('refuses each missing or bad piece with one line naming it', async () => {
    const on = { clusterPort: '5685', nodeId: '1', clusterKeyFile: keyFile };
    expect(await failure({ flags: { ...on, nodeId: undefined } })).toBe(
      'config cluster.nodeId: required with cluster.port (--node-id or COAP_PSK_CLUSTER_NODE_ID, or a StatefulSet hostname ending in -N; this host is "laptop")',
    );
    expect(await failure({ flags: { ...on, clusterKeyFile: undefined } })).toBe('config cluster.keyFile: required with cluster.port (--cluster-key-file or COAP_PSK_CLUSTER_KEY_FILE)');
    expect(await failure({ flags: { ...on, clusterKeyFile: join(dir, 'absent') } })).toBe(`config cluster.keyFile (--cluster-key-file): cannot read ${join(dir, 'absent')} (ENOENT)`);
    expect(await failure({ flags: { ...on, clusterKeyFile: shortKey } })).toBe(`config cluster.keyFile (--cluster-key-file): ${shortKey} must hold at least 32 random bytes (or 64 hex digits)`);
    const shortCid = 'config dtls.cidLength (--cid-length): node forwarding (cluster.port) needs a Connection ID of 6 bytes or more (the node\'s route is in it)';
    expect(await failure({ flags: { ...on, cidLength: '0' } })).toBe(shortCid);
    // 5 passes the schema's 0 or 4..255 and is a byte short of a 4-byte nonce and the 2-byte route: this is the one check.
    expect(await failure({ flags: { ...on, cidLength: '5' } })).toBe(shortCid);
    expect(await settingsOf({ flags: { ...on, cidLength: '6' } })).toMatchObject({ nodeId: 1 });
    expect(await failure({ flags: { ...on, clusterPeers: '0=no-such-host.invalid:5685' } })).toMatch(/^config cluster\.peers \(--cluster-peers\): cannot resolve no-such-host\.invalid \(E[A-Z]+\)$/);
    expect(await failure({ flags: on }, 64)).toBe('config listener.workers: node forwarding (cluster.port) runs at most 63 workers (the worker id has 6 bits in the Connection ID); this is 64');
    expect(await settingsOf({ flags: on }, 63)).toMatchObject({ nodeId: 1 });
  });

  it('the real binary stops at start with that one line, never the key', async () => {
    const r = await runCli(['serve', '--port', '0', '--cluster-port', '5685', '--node-id', '3', '--cluster-key-file', shortKey], SOFTWARE);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`coap-psk: config cluster.keyFile (--cluster-key-file): ${shortKey} must hold at least 32 random bytes (or 64 hex digits)`);
    expect(r.stderr).not.toContain('tooshort');
    // Node 20 refuses any second worker; Node 22.12+ a 64th on a cluster node.
    const workers = await runCli(['serve', '--port', '0', '--workers', '64', '--cluster-port', '5685', '--node-id', '3', '--cluster-key-file', keyFile], SOFTWARE);
    expect(workers.code).toBe(1);
    expect(workers.stderr.trim()).toMatch(/^coap-psk: config listener\.workers \(--workers\): (node forwarding \(cluster\.port\) runs at most 63 workers .*; this is 64|64 workers need Node\.js 22\.12 or later.*)$/);
    // A cluster node of workers takes no takeover, as a primary without a cluster (one of one process does).
    const takeover = await runCli(['serve', '--port', '5684', '--workers', '2', '--takeover', '--cluster-port', '5685', '--node-id', '3', '--cluster-key-file', keyFile], SOFTWARE);
    expect(takeover.code).toBe(1);
    expect(takeover.stderr.trim()).toMatch(/^coap-psk: (--takeover: graceful restart runs with --workers 1 only \(for now\)|config listener\.workers \(--workers\): 2 workers need Node\.js 22\.12 or later.*)$/);
  });
});
