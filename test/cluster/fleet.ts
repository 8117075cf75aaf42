/**
 * The test's side of fleet-child.ts: devices of this project's DTLS client inside the devices
 * namespace, one command at a time.
 */
import { fileURLToPath } from 'node:url';
import type { NetnsCluster } from '../helpers/netns.js';
import { startJsonChild } from './json-child.js';

const CHILD = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));

export interface FleetReply {
  ok: boolean;
  error?: string;
  code?: string;
  payload?: string;
  localPort?: number;
  /** get: the source address:port of the datagram that carried the reply. */
  from?: string;
}

export interface Fleet {
  /** `cid`: offer RFC 9146 Connection IDs (the device sends the server's CID in its records). */
  connect(device: string, identity: string, psk: Buffer, options?: { cid?: boolean }): Promise<FleetReply>;
  get(device: string, path: string[]): Promise<FleetReply>;
  rebind(device: string): Promise<FleetReply>;
  close(): Promise<void>;
}

export function startFleet(cluster: NetnsCluster): Fleet {
  const child = startJsonChild(cluster, cluster.devices, CHILD);
  return {
    connect: (device, identity, psk, options = {}) =>
      child.ask({ op: 'connect', device, identity, psk: psk.toString('hex'), host: cluster.vip, port: cluster.vipPort, cid: options.cid === true }),
    get: (device, path) => child.ask({ op: 'get', device, path }),
    rebind: (device) => child.ask({ op: 'rebind', device }),
    close: () => child.close(),
  };
}
