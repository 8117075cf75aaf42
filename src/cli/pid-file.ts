/**
 * `--pid-file PATH` (config `listener.pidFile`, COAP_PSK_PID_FILE): this process's PID, one
 * decimal line, for a supervisor. systemd's `PIDFile=` reads it, and reads it again when the
 * main process exits: a graceful restart's successor (`serve --takeover`) writes its own PID
 * there before it tells the old process it is ready, so when the old one exits systemd follows
 * the successor as the unit's main process instead of stopping the unit
 * (deploy/systemd/coap-psk-takeover.service, docs/graceful-restart.md).
 *
 * Written atomically (a temporary file beside it, then rename(2)), so a reader never sees it
 * empty or half written; removed when the process exits, but only while it still names this
 * process: the old server of a takeover leaves its successor's file alone.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { UserError } from '../errors.js';

export function writePidFile(path: string, pid = process.pid): void {
  // A fresh name, created exclusively: nothing planted beside the file (a symlink) is followed.
  const temp = `${path}.${pid}.${randomBytes(6).toString('hex')}.tmp`;
  let created = false;
  try {
    writeFileSync(temp, `${pid}\n`, { mode: 0o644, flag: 'wx' });
    created = true;
    renameSync(temp, path);
  } catch (e) {
    if (created) {
      try {
        unlinkSync(temp);
      } catch {
        // already gone
      }
    }
    throw new UserError(`config listener.pidFile: cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The PID the file names, or undefined when it is missing or holds no PID. */
export function readPidFile(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    return /^[1-9][0-9]*$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the file if it still names `pid` (a successor's is left alone). */
export function removePidFile(path: string, pid = process.pid): void {
  if (readPidFile(path) !== pid) return;
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

/** Writes the file now and removes it when the process exits (any exit that runs 'exit' handlers). */
export function holdPidFile(path: string): void {
  writePidFile(path);
  process.once('exit', () => removePidFile(path));
}
