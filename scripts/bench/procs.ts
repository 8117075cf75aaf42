/**
 * Server processes for the bench: spawned pinned to one core with taskset, watched through
 * /proc (CPU time, VmRSS), killed by pid at the end. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every child still running, so an emergency exit can SIGKILL each one by its pid. */
const running = new Set<ChildProcess>();

export function killAllNow(): void {
  for (const c of running) c.kill('SIGKILL');
}

export interface ServerProc {
  name: string;
  port: number;
  pid: number;
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** True once something holds UDP 127.0.0.1:port (read from /proc/net/udp, no probe bind). */
export function udpPortTaken(port: number): boolean {
  let table = '';
  try {
    table = readFileSync('/proc/net/udp', 'latin1');
  } catch {
    return false;
  }
  return table.includes(`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} `);
}

/** Spawns `taskset -c <core> cmd args`; resolves when UDP 127.0.0.1:port is bound (max 30 s). */
export async function startPinned(
  name: string,
  core: number,
  cmd: string,
  args: string[],
  port: number,
  env: NodeJS.ProcessEnv,
  lifetimeSec = 900,
): Promise<ServerProc> {
  const child = spawnPinned(core, cmd, args, env, lifetimeSec * 1000);
  let log = '';
  const keep = (d: Buffer) => {
    if (log.length < 1 << 20) log += d.toString('latin1');
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async (): Promise<void> => {
    if (exited()) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 100 && !exited(); i++) await sleep(50);
    if (!exited()) child.kill('SIGKILL');
    for (let i = 0; i < 40 && !exited(); i++) await sleep(50);
  };
  for (let i = 0; i < 300; i++) {
    if (exited()) break;
    if (udpPortTaken(port)) return { name, port, pid: child.pid!, child, log: () => log, stop };
    await sleep(100);
  }
  await stop();
  throw new Error(`${name} did not start: ${log.trim().split('\n').slice(-3).join(' | ')}`);
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime 15.
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** VmRSS in KiB. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/**
 * `taskset -c <core> cmd args`, output piped, listed in `running` until it exits and killed
 * after `lifetimeMs` whatever happens to this process's control flow.
 */
function spawnPinned(core: number, cmd: string, args: string[], env: NodeJS.ProcessEnv, lifetimeMs: number): ChildProcess {
  const child = spawn('taskset', ['-c', String(core), cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const life = setTimeout(() => child.kill('SIGKILL'), lifetimeMs);
  life.unref();
  running.add(child);
  child.once('exit', () => {
    clearTimeout(life);
    running.delete(child);
  });
  return child;
}

/** Runs `taskset -c <core> cmd args` to its end (killed after timeoutMs); resolves with its stdout. */
export function runPinned(core: number, cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnPinned(core, cmd, args, env, timeoutMs);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
    child.once('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

/**
 * `taskset -c <core> cmd args` whose stdout lines are handed to `onLine` as they come (the
 * pion generator marks its measured window that way); resolves at exit 0 (killed after timeoutMs).
 */
export function runPinnedLines(core: number, cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnPinned(core, cmd, args, env, timeoutMs);
    let partial = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
    child.once('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}
