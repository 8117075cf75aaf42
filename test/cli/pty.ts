/**
 * Runs a command on a pseudo-terminal, as a user's terminal would: util-linux `script` (always
 * on Debian and Ubuntu, package bsdutils) allocates the pty, and the test reads what the
 * terminal shows and types into it. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface PtyRun {
  child: ChildProcess;
  /** Everything the terminal showed so far (stdout and stderr of the command, echo included). */
  screen(): string;
  /** Resolves when the screen matches, rejects after timeoutMs with what it showed. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  type(text: string): void;
  /** Resolves with script's exit code (the command's, thanks to -e). */
  exited(timeoutMs?: number): Promise<number | null>;
  kill(): void;
}

const shellQuote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

export function onPty(argv: string[], env: NodeJS.ProcessEnv): PtyRun {
  // script runs the command with $SHELL -c, /bin/sh when SHELL is unset (as in CI). dash forks
  // instead of exec'ing it, then dies of the Ctrl-C that the command handles: exit 130. `exec`
  // makes the command itself the terminal's foreground process under any shell.
  const command = `exec ${argv.map(shellQuote).join(' ')}`;
  const child = spawn('script', ['-qec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    screen: () => out,
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise((done, fail) => {
        const check = (): void => {
          if (!pattern.test(out)) return;
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.stderr!.off('data', check);
          done();
        };
        const timer = setTimeout(() => {
          child.stdout!.off('data', check);
          child.stderr!.off('data', check);
          fail(new Error(`the terminal never showed ${pattern}; it showed:\n${out}`));
        }, timeoutMs);
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        check();
      }),
    type: (text) => child.stdin!.write(text),
    exited: (timeoutMs = 20_000) =>
      new Promise((done, fail) => {
        if (child.exitCode !== null) return done(child.exitCode);
        const timer = setTimeout(() => fail(new Error(`still running after ${timeoutMs} ms:\n${out}`)), timeoutMs);
        child.once('exit', (code) => {
          clearTimeout(timer);
          done(code);
        });
      }),
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
