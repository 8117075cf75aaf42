/**
 * What node forwarding needs before `serve` starts (docs/cluster.md), checked once the cluster is
 * on (cluster.port set): no more workers than the route's worker id names (63), a Connection ID
 * with room for the route, a node id, and the cluster key from its file; static peers' host names resolved to
 * addresses. Each missing or bad one fails the start with one line naming it; no line ever
 * holds a byte of the key.
 */
import { readFile } from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { UserError } from '../errors.js';
import type { ClusterConfig, ResolvedConfig } from '../config/index.js';
import { DEFAULT_DTLS_CONFIG } from '../dtls/config.js';
import { MIN_CID_NONCE_LENGTH } from '../dtls/cid-factory.js';
import { parseClusterKey, type ClusterPeer } from './cluster-settings.js';
import { MAX_NODE_WORKERS, NODE_ROUTE_BYTES } from './node-routing.js';

export interface NodeSettings {
  nodeId: number;
  port: number;
  /** The cluster key's bytes: the caller derives its keys and then zeroes them. */
  key: Buffer;
  /** Static peers, by IP address. */
  peers: ClusterPeer[];
  dns?: string;
  backward: boolean;
}

/** undefined when the cluster is off. */
export async function nodeSettings(config: ResolvedConfig, workers: number): Promise<NodeSettings | undefined> {
  const c = config.cluster;
  if (c.port === undefined) return undefined;
  const named = (path: string) => {
    const origin = config.origins.get(path);
    return origin ? `config ${path} (${origin})` : `config ${path}`;
  };
  if (workers > MAX_NODE_WORKERS) {
    throw new UserError(`${named('listener.workers')}: node forwarding (cluster.port) runs at most ${MAX_NODE_WORKERS} workers (the worker id has 6 bits in the Connection ID); this is ${workers}`);
  }
  // The one check of the CID length for the route (the schema checks only 0 or 4..255):
  // startNodeRouting() takes it as given.
  const cidLength = config.dtls.cidLength ?? DEFAULT_DTLS_CONFIG.cidLength;
  const needed = MIN_CID_NONCE_LENGTH + NODE_ROUTE_BYTES;
  if (cidLength < needed) throw new UserError(`${named('dtls.cidLength')}: node forwarding (cluster.port) needs a Connection ID of ${needed} bytes or more (the node's route is in it)`);
  if (c.nodeId === undefined) {
    throw new UserError(`config cluster.nodeId: required with cluster.port (--node-id or COAP_PSK_CLUSTER_NODE_ID, or a StatefulSet hostname ending in -N; this host is ${JSON.stringify(c.hostname)})`);
  }
  if (c.keyFile === undefined) throw new UserError('config cluster.keyFile: required with cluster.port (--cluster-key-file or COAP_PSK_CLUSTER_KEY_FILE)');
  const key = await readClusterKey(c.keyFile, named('cluster.keyFile'));
  return { nodeId: c.nodeId, port: c.port, key, peers: await resolvePeers(c, named('cluster.peers')), dns: c.dns, backward: c.backward };
}

async function readClusterKey(file: string, setting: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new UserError(`${setting}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const parsed = parseClusterKey(bytes);
  bytes.fill(0);
  if (!parsed.ok) throw new UserError(`${setting}: ${file} ${parsed.error}`);
  return parsed.value;
}

/** ForwardLink wants addresses: a peer named by host name is looked up once, at start. */
async function resolvePeers(c: ClusterConfig, setting: string): Promise<ClusterPeer[]> {
  return Promise.all(c.peers.map(async (p) => {
    if (isIP(p.host) !== 0) return p;
    try {
      return { ...p, host: (await lookup(p.host)).address };
    } catch (e) {
      throw new UserError(`${setting}: cannot resolve ${p.host} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }));
}
