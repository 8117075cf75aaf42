/**
 * How many worker processes `coap-psk serve` runs (`--workers N|auto`, COAP_PSK_WORKERS,
 * `listener.workers`), and whether this Node.js can run more than one.
 *
 * Several workers need several UDP sockets bound to one port (SO_REUSEPORT), so that the
 * kernel keeps each peer's 4-tuple on one socket and so on one worker's DTLS state. node:dgram
 * has `reusePort` since 22.12 / 23.1; Node 20 ignores the option and the second bind fails, and
 * one socket shared by all workers would hand a peer's records to any of them.
 */
import { availableParallelism } from 'node:os';
import { UserError } from '../errors.js';

/** One process, as before workers existed: see the README (Workers) for why not `auto`. */
export const DEFAULT_WORKERS = 1;

export function reusePortSupported(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

/**
 * The number of workers for a setting (`auto`: the cores this process may use). More than one
 * on a Node.js without reusePort fails here, at start, with one line.
 */
export function workerCount(setting: number | 'auto' | undefined, origin = 'listener.workers', version = process.versions.node): number {
  const n = setting === 'auto' ? availableParallelism() : setting ?? DEFAULT_WORKERS;
  if (n > 1 && !reusePortSupported(version)) {
    throw new UserError(
      `config listener.workers (${origin}): ${n} workers need Node.js 22.12 or later (dgram reusePort); this is Node.js ${version}, which serves with --workers 1`,
    );
  }
  return n;
}
