/**
 * Handshake work that may wait a little, run in slices between turns of the event loop, so
 * that the records of established sessions are not held up behind it.
 *
 * When the HSM answers, the handshake's remaining work runs in one go: a PRF per candidate key,
 * the key block, the record protections, the client's Finished, flight 6 sealed and sent (about
 * 0.2 ms). The answers come in bursts: a PKCS#11 worker or a timer list hands back every lookup
 * that finished, and running them back to back keeps the loop busy for milliseconds while
 * requests of established sessions wait in the socket (measured: stretches of 2-6 ms under 300
 * handshakes/s with 50 ms of HSM latency, `npm run bench`'s isolation row). Queued here, they
 * run for at most `sliceMs` per turn, and every turn between slices reads the socket first.
 *
 * A task must check, when it runs, that what it works for still exists: its handshake may have
 * been closed or superseded while it waited. Nothing is ever dropped from the queue: a task of a
 * closed handshake still runs, to wipe the keys it was given.
 */
export class HandshakeWork {
  private readonly queue: (() => void)[] = [];
  /** The queue's first task not yet run (tasks are shifted off in bulk, not one by one). */
  private head = 0;
  private scheduled = false;
  private readonly drain = (): void => this.runSlice();

  /**
   * @param sliceMs the longest run of queued tasks in one turn of the event loop; 0 runs each task at once.
   * @param onError what a task that threw is reported to: a bug, and the other tasks still run.
   */
  constructor(
    private readonly sliceMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Tasks waiting for their turn. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  defer(task: () => void): void {
    if (this.sliceMs <= 0) return task();
    this.queue.push(task);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  }

  private runSlice(): void {
    const until = performance.now() + this.sliceMs;
    // At least one task per slice, however long the previous one took.
    do {
      const task = this.queue[this.head]!;
      this.queue[this.head++] = noop; // the closure and what it holds are free once run
      try {
        task();
      } catch (err) {
        this.onError(err);
      }
    } while (this.head < this.queue.length && performance.now() < until);
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.scheduled = this.queue.length > 0;
    if (this.scheduled) setImmediate(this.drain);
  }
}

const noop = (): void => {};
