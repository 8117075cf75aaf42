/**
 * The NSS key log (`SSLKEYLOGFILE` format) for Wireshark and tshark: one line per established
 * session, `CLIENT_RANDOM <client_random hex> <master_secret hex>`, which is all a dissector
 * needs to decrypt DTLS 1.2 records (with or without extended master secret: the master secret
 * itself is logged). This file is the one deliberate place where a secret leaves the process;
 * it is off by default, created 0600, and the server warns when it is on.
 */
import { closeSync, fchmodSync, fstatSync, openSync, write } from 'node:fs';

export interface KeyLogSession {
  readonly clientRandom: Buffer;
  readonly masterSecret: Buffer;
}

export class KeyLogWriter {
  private fd: number | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Lines written so far (for tests and the shutdown log line). */
  written = 0;

  constructor(readonly path: string) {
    // 'a': append, never truncate a log another tool shares; 0600 before the first line.
    this.fd = openSync(path, 'a', 0o600);
    try {
      if ((fstatSync(this.fd).mode & 0o077) !== 0) fchmodSync(this.fd, 0o600);
    } catch (e) {
      closeSync(this.fd);
      this.fd = undefined;
      throw e;
    }
  }

  /** The line, formatted at once (the caller may wipe the buffers afterwards), written in order. */
  log(session: KeyLogSession): void {
    if (this.fd === undefined) return;
    if (session.clientRandom.length !== 32 || session.masterSecret.length !== 48) return;
    const line = Buffer.from(`CLIENT_RANDOM ${session.clientRandom.toString('hex')} ${session.masterSecret.toString('hex')}\n`, 'latin1');
    const fd = this.fd;
    this.queue = this.queue.then(
      () =>
        new Promise<void>((done) =>
          write(fd, line, (err) => {
            line.fill(0);
            if (!err) this.written++;
            done();
          }),
        ),
    );
  }

  /** Waits for pending lines, then closes the file. Idempotent. */
  async close(): Promise<void> {
    await this.queue;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Resolves when every line logged so far is in the file. */
  flush(): Promise<void> {
    return this.queue;
  }
}

export function keyLogWarning(path: string): string {
  return `key log is ON: every session's master secret is appended to ${path}; anyone who reads it can decrypt captured traffic. Lab use only.`;
}
