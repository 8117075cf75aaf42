/**
 * A cluster on one machine, made of Linux network namespaces (`ip netns`, Debian iproute2) with
 * the kernel's own UDP load balancing (nftables DNAT, as kube-proxy's nftables mode does it):
 *
 *   devices ns (10.155.0.2) --veth-- lb ns (router, VIP 10.155.2.1) --bridge-- node ns 0..n-1 (10.155.1.1..n)
 *
 * The lb namespace routes between the two sides and DNATs UDP sent to the virtual address
 * (`vip`:`vipPort`) to one node, chosen per flow (a conntrack entry: the first datagram of a
 * 4-tuple picks the node, the rest of the flow and its replies follow it):
 *  - 'round-robin': `numgen inc mod N`, no affinity: every new flow goes to the next node;
 *  - 'affinity':    `jhash ip saddr . udp sport mod N`, the same 4-tuple always to the same node.
 * Replies leave the VIP un-NATed by conntrack, so a device only ever sees the VIP.
 *
 * Traffic stays inside: every interface is created inside a namespace of this cluster (no veth
 * end, route or address is ever added to the namespace the tests run in), so the 10.155.0.0/16
 * addresses exist nowhere else and nothing can be routed out. Names carry a prefix with the
 * pid of the process that made them (`cpsk-<pid>-<n>-`): `destroy()` removes them, an exit hook
 * removes them when a test run ends without it, and the next run removes those whose process
 * is gone (a crashed run). Needs root and the `ip` and `nft` commands: see `netnsUnavailable()`.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { runBounded, type RunResult } from './peers.js';

export type BalancerMode = 'round-robin' | 'affinity';

/** The namespaces' address plan; private addresses that live only inside these namespaces. */
export const DEVICES_ADDRESS = '10.155.0.2';
export const VIP = '10.155.2.1';
const LB_DEVICES_SIDE = '10.155.0.1';
const LB_NODES_SIDE = '10.155.1.254';
export const nodeAddress = (i: number): string => `10.155.1.${i + 1}`;

const NAME_PREFIX = 'cpsk-';
const COMMAND_TIMEOUT_MS = 10_000;

export interface NetnsCluster {
  /** Namespace names: the load balancer (router), the devices, one per node. */
  readonly lb: string;
  readonly devices: string;
  readonly nodes: readonly string[];
  readonly vip: string;
  readonly vipPort: number;
  /** Points the VIP at the nodes listed by index (the endpoints kube-proxy would program). */
  setBalancer(mode: BalancerMode, nodeIndexes: readonly number[]): Promise<void>;
  /** Runs a command inside a namespace, bounded; resolves with its output. */
  exec(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<RunResult>;
  /** Starts a long-running process inside a namespace (`ip netns exec` execs it: same pid). */
  spawnIn(ns: string, cmd: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Ends what still runs inside, removes every namespace (and with them veths, bridge, rules). */
  destroy(): Promise<void>;
}

function commandExists(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Why a namespace test cannot run here (a reason for `describe.skipIf`), or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns); CI runs as root';
  for (const cmd of ['ip', 'nft']) {
    if (!commandExists(cmd)) return `\`${cmd}\` is missing (scripts/install-deps.sh installs iproute2 and nftables)`;
  }
  return undefined;
}

function ipSync(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

function listNamespaces(prefix: string): string[] {
  return ipSync(['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name.startsWith(prefix));
}

/** Kills what runs inside (by pid, as `ip netns pids` lists it) and deletes the namespace. */
function removeNamespace(name: string): void {
  let pids: string[] = [];
  try {
    pids = ipSync(['netns', 'pids', name]).split('\n').filter(Boolean);
  } catch {
    // already gone
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  try {
    ipSync(['netns', 'del', name]);
  } catch {
    // already gone
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces left by an earlier run that crashed: their maker's pid is gone. */
export function removeStaleNamespaces(prefix = NAME_PREFIX): string[] {
  const stale = listNamespaces(prefix).filter((name) => {
    const pid = Number(/^(\d+)-\d+-/.exec(name.slice(prefix.length))?.[1]);
    return Number.isInteger(pid) && pid !== process.pid && !processAlive(pid);
  });
  stale.forEach(removeNamespace);
  return stale;
}

let clusterCount = 0;
const liveNamespaces = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => liveNamespaces.forEach(removeNamespace));
}

/** The nftables ruleset of the load balancer: one table, replaced as a whole (atomically). */
export function balancerRuleset(mode: BalancerMode, targets: readonly string[], vipPort: number): string {
  if (targets.length === 0) throw new RangeError('a balancer needs at least one node');
  const map = targets.map((addr, i) => `${i} : ${addr}`).join(', ');
  const pick = mode === 'round-robin' ? `numgen inc mod ${targets.length}` : `jhash ip saddr . udp sport mod ${targets.length}`;
  return [
    'table ip cpsk_lb {',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    `    ip daddr ${VIP} udp dport ${vipPort} dnat to ${pick} map { ${map} }`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function createNetnsCluster(options: { nodes: number; vipPort?: number }): Promise<NetnsCluster> {
  removeStaleNamespaces();
  installExitHook();
  const prefix = `${NAME_PREFIX}${process.pid}-${clusterCount++}-`;
  const lb = `${prefix}lb`;
  const devices = `${prefix}dev`;
  const nodes = Array.from({ length: options.nodes }, (_, i) => `${prefix}n${i}`);
  const vipPort = options.vipPort ?? 5684;
  const all = [lb, devices, ...nodes];
  const ipIn = (ns: string, ...args: string[]) => ipSync(['-n', ns, ...args]);
  let tableLoaded = false;

  const cluster: NetnsCluster = {
    lb,
    devices,
    nodes,
    vip: VIP,
    vipPort,
    async setBalancer(mode, nodeIndexes) {
      const ruleset = balancerRuleset(mode, nodeIndexes.map(nodeAddress), vipPort);
      // Deleting and adding in one `nft -f` transaction: no datagram sees a half-made table.
      const script = (tableLoaded ? 'delete table ip cpsk_lb\n' : '') + ruleset;
      const res = await runBounded('ip', ['netns', 'exec', lb, 'nft', '-f', '-'], { timeoutMs: COMMAND_TIMEOUT_MS, input: script });
      if (res.exitCode !== 0) throw new Error(`nft in ${lb} failed: ${res.stderr.trim()}`);
      tableLoaded = true;
    },
    exec: (ns, cmd, args, timeoutMs = COMMAND_TIMEOUT_MS) => runBounded('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs }),
    spawnIn: (ns, cmd, args, spawnOptions = {}) => spawn('ip', ['netns', 'exec', ns, cmd, ...args], spawnOptions),
    async destroy() {
      for (const ns of all) {
        removeNamespace(ns);
        liveNamespaces.delete(ns);
      }
    },
  };

  try {
    for (const ns of all) {
      ipSync(['netns', 'add', ns]);
      liveNamespaces.add(ns);
      ipIn(ns, 'link', 'set', 'lo', 'up');
    }
    execFileSync('ip', ['netns', 'exec', lb, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], { timeout: COMMAND_TIMEOUT_MS });
    // Devices side: one veth pair made inside the lb namespace, its peer moved straight into
    // the devices namespace (never into ours).
    ipIn(lb, 'link', 'add', 'devs', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', devices);
    ipIn(lb, 'addr', 'add', `${LB_DEVICES_SIDE}/24`, 'dev', 'devs');
    ipIn(lb, 'link', 'set', 'devs', 'up');
    ipIn(devices, 'addr', 'add', `${DEVICES_ADDRESS}/24`, 'dev', 'eth0');
    ipIn(devices, 'link', 'set', 'eth0', 'up');
    ipIn(devices, 'route', 'add', 'default', 'via', LB_DEVICES_SIDE);
    // Nodes side: a bridge in the lb namespace, one veth per node.
    ipIn(lb, 'link', 'add', 'br0', 'type', 'bridge');
    ipIn(lb, 'addr', 'add', `${LB_NODES_SIDE}/24`, 'dev', 'br0');
    ipIn(lb, 'link', 'set', 'br0', 'up');
    nodes.forEach((ns, i) => {
      ipIn(lb, 'link', 'add', `n${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ipIn(lb, 'link', 'set', `n${i}`, 'master', 'br0');
      ipIn(lb, 'link', 'set', `n${i}`, 'up');
      ipIn(ns, 'addr', 'add', `${nodeAddress(i)}/24`, 'dev', 'eth0');
      ipIn(ns, 'link', 'set', 'eth0', 'up');
      ipIn(ns, 'route', 'add', 'default', 'via', LB_NODES_SIDE);
    });
    await cluster.setBalancer('affinity', nodes.map((_, i) => i));
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
  return cluster;
}
