/**
 * The test's side of fleet-child.ts: starts it inside the devices namespace and sends it one
 * command at a time, each answered by one JSON line (bounded by the child's own timeouts and
 * by REPLY_TIMEOUT_MS here).
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NetnsCluster } from '../helpers/netns.js';

const CHILD = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));
const REPLY_TIMEOUT_MS = 15_000;

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
  const child: ChildProcess = cluster.spawnIn(cluster.devices, process.execPath, ['--import', 'tsx', CHILD], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiting = new Map<number, (r: FleetReply) => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const reply = JSON.parse(line) as FleetReply & { seq: number };
    waiting.get(reply.seq)?.(reply);
    waiting.delete(reply.seq);
  });
  let seq = 0;
  const ask = (cmd: Record<string, unknown>): Promise<FleetReply> =>
    new Promise((done, fail) => {
      const n = ++seq;
      const timer = setTimeout(() => fail(new Error(`fleet did not answer ${JSON.stringify(cmd.op)} in time:\n${stderr}`)), REPLY_TIMEOUT_MS);
      waiting.set(n, (r) => {
        clearTimeout(timer);
        done(r);
      });
      child.stdin!.write(`${JSON.stringify({ seq: n, ...cmd })}\n`);
    });
  return {
    connect: (device, identity, psk) =>
      ask({ op: 'connect', device, identity, psk: psk.toString('hex'), host: cluster.vip, port: cluster.vipPort }),
    get: (device, path) => ask({ op: 'get', device, path }),
    rebind: (device) => ask({ op: 'rebind', device }),
    close: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(kill);
          done();
        });
        child.stdin!.end();
      }),
  };
}
