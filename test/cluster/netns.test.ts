/**
 * The namespace harness itself: traffic stays inside, everything goes away afterwards, and what a
 * crashed run left behind is removed by the next one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createNetnsCluster, netnsUnavailable, removeStaleNamespaces, VIP } from '../helpers/netns.js';

const unavailable = netnsUnavailable();
const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe.skipIf(unavailable !== undefined)('network namespace harness', () => {
  it('adds no interface, address or route to the namespace the tests run in, and removes all it made', async () => {
    const ours = () => ['addr', 'link', 'route'].map((what) => execFileSync('ip', ['-o', what], { encoding: 'utf8' })).join('');
    const before = ours();
    const cluster = await createNetnsCluster({ nodes: 2 });
    try {
      expect(ours()).toBe(before);
      expect(before).not.toContain('10.155.');
      const nft = await cluster.exec(cluster.lb, 'nft', ['list', 'table', 'ip', 'cpsk_lb']);
      expect(nft.stdout).toContain('jhash ip saddr . udp sport mod 2');
      // The devices reach the nodes only through the lb namespace; the root namespace not at all.
      const route = await cluster.exec(cluster.devices, 'ip', ['route', 'get', VIP]);
      expect(route.stdout).toContain('via 10.155.0.1 dev eth0');
    } finally {
      await cluster.destroy();
    }
    for (const ns of [cluster.lb, cluster.devices, ...cluster.nodes]) expect(namespaces()).not.toContain(ns);
  });

  it('removes what it made when the process exits without destroy() (a test that failed and exited)', () => {
    const script = `import { createNetnsCluster } from ${JSON.stringify(new URL('../helpers/netns.ts', import.meta.url).pathname)};
      const c = await createNetnsCluster({ nodes: 1 });
      console.log(c.lb);
      process.exit(3);`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(child.status, child.stderr).toBe(3);
    const lb = child.stdout.trim();
    expect(lb).toMatch(/^cpsk-\d+-0-lb$/);
    expect(namespaces()).not.toContain(lb.replace(/-lb$/, ''));
  });

  it('removes namespaces left by a run whose process is gone, and only those', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // a pid that has exited
    // A prefix of this test's own, so that a cluster another test file makes meanwhile (which
    // cleans up `cpsk-` names) cannot remove them first.
    const prefix = 'cpsktest-';
    const stale = `${prefix}${dead}-0-lb`;
    const mine = `${prefix}${process.pid}-999-lb`;
    execFileSync('ip', ['netns', 'add', stale]);
    execFileSync('ip', ['netns', 'add', mine]);
    try {
      expect(removeStaleNamespaces(prefix)).toContain(stale);
      expect(namespaces()).not.toContain(stale);
      expect(namespaces()).toContain(mine);
    } finally {
      execFileSync('ip', ['netns', 'del', mine]);
      spawnSync('ip', ['netns', 'del', stale]);
    }
  });
});
