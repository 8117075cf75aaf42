/**
 * When to start a worker again after it died: at once the first time, then doubling from
 * 250 ms up to 30 s while it keeps dying young, so that a worker that cannot start (HSM gone,
 * a bug on a path every device takes) does not spin a core or hammer the HSM with logins.
 * A worker that lived a minute counts as healthy again.
 */
export const RESTART_BASE_MS = 250;
export const RESTART_MAX_MS = 30_000;
export const HEALTHY_AFTER_MS = 60_000;

export class RestartPolicy {
  private failures = 0;

  /** The delay before the next start, given how long the dead worker lived. */
  next(livedMs: number): number {
    if (livedMs >= HEALTHY_AFTER_MS) this.failures = 0;
    const delay = this.failures === 0 ? 0 : Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (this.failures - 1));
    this.failures++;
    return delay;
  }
}
