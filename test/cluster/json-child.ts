/**
 * A child process inside a network namespace that takes one JSON command per line on stdin and
 * answers each with one JSON line carrying the same `seq`; lines without `seq` are events.
 * Bounded by REPLY_TIMEOUT_MS per command here, and by the child's own life limit.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { NetnsCluster } from '../helpers/netns.js';

const REPLY_TIMEOUT_MS = 15_000;

export interface JsonChild {
  ask<T>(cmd: Record<string, unknown>): Promise<T>;
  /** Event lines received so far. */
  readonly events: Record<string, unknown>[];
  close(): Promise<void>;
}

export function startJsonChild(cluster: NetnsCluster, ns: string, script: string, env: Record<string, string> = {}): JsonChild {
  const child: ChildProcess = cluster.spawnIn(ns, process.execPath, ['--import', 'tsx', script], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const waiting = new Map<number, (r: unknown) => void>();
  const events: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const msg = JSON.parse(line) as { seq?: number };
    if (msg.seq === undefined) return void events.push(msg);
    waiting.get(msg.seq)?.(msg);
    waiting.delete(msg.seq);
  });
  let seq = 0;
  return {
    events,
    ask: <T>(cmd: Record<string, unknown>) =>
      new Promise<T>((done, fail) => {
        const n = ++seq;
        const timer = setTimeout(() => fail(new Error(`${script} did not answer ${JSON.stringify(cmd.op)} in time:\n${stderr}`)), REPLY_TIMEOUT_MS);
        waiting.set(n, (r) => {
          clearTimeout(timer);
          done(r as T);
        });
        child.stdin!.write(`${JSON.stringify({ seq: n, ...cmd })}\n`);
      }),
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
