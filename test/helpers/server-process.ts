/**
 * The real server as a child process: `node bin/coap-psk.js serve` exactly as a user starts
 * it, with the key configuration in its environment (never on its command line).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { freeUdpPort, LOOPBACK } from './ports.js';

const projectRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BIN = resolve(projectRoot, 'bin/coap-psk.js');

export interface ServerProcess {
  port: number;
  child: ChildProcess;
  /** Everything the server wrote to stderr so far (its JSON log lines). */
  log(): string;
  /**
   * The log once it contains `text` (or as it is after `timeoutMs`): the server gathers its log
   * lines into larger writes and flushes them within 200 ms (src/log.ts).
   */
  waitForLog(text: string, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface ServerPlacement {
  /** Run inside this network namespace (`ip netns exec`, which execs: the child is the server). */
  netns?: string;
  /** Default 127.0.0.1 and a free port; in a namespace 0.0.0.0 and 5684. */
  host?: string;
  port?: number;
}

export async function startServerProcess(env: Record<string, string>, extraArgs: string[] = [], placement: ServerPlacement = {}): Promise<ServerProcess> {
  const port = placement.port ?? (placement.netns ? 5684 : await freeUdpPort());
  const host = placement.host ?? (placement.netns ? '0.0.0.0' : LOOPBACK);
  const argv = [process.execPath, BIN, 'serve', '--host', host, '--port', String(port), ...extraArgs];
  if (placement.netns) argv.unshift('ip', 'netns', 'exec', placement.netns);
  const child = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, COAP_PSK_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start in 20 s:\n${stderr}`)), 20_000);
    const check = () => {
      if (stderr.includes('coap-psk serving')) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        ready();
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`server exited with ${code} before serving:\n${stderr}`));
    });
  });
  return {
    port,
    child,
    log: () => stderr,
    waitForLog: async (text, timeoutMs = 3000) => {
      for (let waited = 0; !stderr.includes(text) && waited < timeoutMs; waited += 25) await new Promise((r) => setTimeout(r, 25));
      return stderr;
    },
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done(child.exitCode);
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', (code) => {
          clearTimeout(kill);
          done(code);
        });
        child.kill('SIGTERM');
      }),
  };
}
