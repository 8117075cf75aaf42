/**
 * The values of the cluster settings issue 15 names, parsed and checked, for the configuration
 * schema (src/config/schema.ts) and the start checks (node-settings.ts; docs/cluster.md):
 *  - `--cluster-peers id=host:port,...` (COAP_PSK_CLUSTER_PEERS): the static peer list;
 *  - `--node-id` (COAP_PSK_CLUSTER_NODE_ID) or else a StatefulSet pod's hostname ordinal;
 *  - `--cluster-key-file` (COAP_PSK_CLUSTER_KEY_FILE): the bytes of the cluster key.
 * Each parser returns a value or an error sentence for the one-line start failure; none throws,
 * and no error quotes a key.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { MAX_NODE_ID, MIN_CLUSTER_KEY_LENGTH } from './forward-wire.js';

export interface ClusterPeer {
  nodeId: number;
  host: string;
  port: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const ENTRY = /^(\d+)=(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/;

export function parseNodeId(text: string): number | undefined {
  if (!/^\d{1,4}$/.test(text)) return undefined;
  const id = Number(text);
  return id <= MAX_NODE_ID ? id : undefined;
}

/** `0=10.0.0.5:5685,1=[fd00::1]:5685,2=coap-psk-2.coap-psk-nodes:5685` */
export function parseClusterPeers(text: string): Parsed<ClusterPeer[]> {
  const peers: ClusterPeer[] = [];
  const entries = text.split(',').map((e) => e.trim());
  for (const [i, entry] of entries.entries()) {
    const fail = (why: string): Parsed<ClusterPeer[]> => ({ ok: false, error: `entry ${i + 1} "${entry}": ${why}` });
    const m = ENTRY.exec(entry);
    if (!m) return fail('expected id=host:port (an IPv6 address in brackets)');
    const nodeId = parseNodeId(m[1]);
    if (nodeId === undefined) return fail(`node id must be 0..${MAX_NODE_ID}`);
    const host = m[2] ?? m[3];
    if (m[2] !== undefined ? !isIPv6(host) : !(isIPv4(host) || (HOSTNAME.test(host) && !/^[\d.]+$/.test(host)))) {
      return fail('not an IP address or host name');
    }
    const port = Number(m[4]);
    if (port < 1 || port > 65535) return fail('port must be 1..65535');
    if (peers.some((p) => p.nodeId === nodeId)) return fail(`node id ${nodeId} listed twice`);
    peers.push({ nodeId, host, port });
  }
  return { ok: true, value: peers };
}

/** A StatefulSet pod is named `<statefulset>-<ordinal>`; the ordinal is its node id. */
export function nodeIdFromHostname(hostname: string): number | undefined {
  const m = /-(\d+)$/.exec(hostname.split('.')[0]);
  return m ? parseNodeId(m[1]) : undefined;
}

/** The key file's bytes: at least 32 raw bytes, or 64 or more hex digits (whitespace around ignored). */
export function parseClusterKey(file: Buffer): Parsed<Buffer> {
  const text = file.toString('latin1').trim();
  const key = /^(?:[0-9a-fA-F]{2})+$/.test(text) && text.length >= 2 * MIN_CLUSTER_KEY_LENGTH ? Buffer.from(text, 'hex') : Buffer.from(file);
  if (key.length < MIN_CLUSTER_KEY_LENGTH) {
    key.fill(0);
    return { ok: false, error: `must hold at least ${MIN_CLUSTER_KEY_LENGTH} random bytes (or ${2 * MIN_CLUSTER_KEY_LENGTH} hex digits)` };
  }
  return { ok: true, value: key };
}
