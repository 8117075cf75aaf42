/** Runs the real `coap-psk` binary as an operator would, with a given environment and stdin. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve('bin/coap-psk.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `env` entries set to undefined are removed from the inherited environment. */
export function runCli(args: string[], env: Record<string, string | undefined>, stdin: string | Buffer = ''): Promise<Run> {
  const full: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(full)) if (v === undefined) delete full[k];
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: full as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}
