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
}

export interface Fleet {
  connect(device: string, identity: string, psk: Buffer): Promise<FleetReply>;
  get(device: string, path: string[]): Promise<FleetReply>;
  rebind(device: string): Promise<FleetReply>;
  close(): Promise<void>;
}

export function startFleet(cluster: NetnsCluster): Fleet {
  const child = startJsonChild(cluster, cluster.devices, CHILD);
  return {
    connect: (device, identity, psk) =>
      child.ask({ op: 'connect', device, identity, psk: psk.toString('hex'), host: cluster.vip, port: cluster.vipPort }),
    get: (device, path) => child.ask({ op: 'get', device, path }),
    rebind: (device) => child.ask({ op: 'rebind', device }),
    close: () => child.close(),
  };
}
