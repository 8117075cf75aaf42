/**
 * Flights and their retransmission (RFC 6347 section 4.2.4).
 *
 * A flight is kept as messages, not as datagrams: every retransmission is re-packed with
 * fresh record sequence numbers, since a peer's anti-replay window would drop the old ones.
 */

export type FlightItem =
  | { readonly kind: 'handshake'; readonly epoch: number; readonly msgType: number; readonly messageSeq: number; readonly body: Buffer }
  | { readonly kind: 'change_cipher_spec'; readonly epoch: number };

export interface RetransmitPolicy {
  /** First timeout; RFC 6347 recommends 1 s. */
  readonly initialMs: number;
  /** The doubling stops here; RFC 6347 recommends at least 60 s. */
  readonly maxMs: number;
  /** After this many retransmissions the handshake is given up. */
  readonly maxRetransmits: number;
}

export const DEFAULT_RETRANSMIT: RetransmitPolicy = { initialMs: 1000, maxMs: 60_000, maxRetransmits: 6 };

/** Exponential backoff timer for the flight in flight. One instance per handshake. */
export class RetransmitTimer {
  private timer: NodeJS.Timeout | undefined;
  private timeoutMs: number;
  private count = 0;
  /** The wait running now ends at the deadline. */
  private lastWait = false;

  constructor(
    private readonly policy: RetransmitPolicy,
    private readonly onRetransmit: () => void,
    /** `atDeadline`: the deadline ended the retransmissions, not their count. */
    private readonly onGiveUp: (atDeadline: boolean) => void,
    /** Epoch ms past which nothing is retransmitted: the timer gives up then instead. */
    private readonly deadline = Infinity,
  ) {
    this.timeoutMs = policy.initialMs;
  }

  /** (Re)arms the timer for a flight just sent; a new flight resets the backoff. */
  start(newFlight: boolean): void {
    if (newFlight) {
      this.timeoutMs = this.policy.initialMs;
      this.count = 0;
    }
    this.stop();
    const untilDeadline = this.deadline - Date.now();
    // Decided here, not when the timer fires: a timer may fire a millisecond early.
    this.lastWait = untilDeadline <= this.timeoutMs;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(this.timeoutMs, untilDeadline)));
    // A pending retransmission must not keep a process alive on its own.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire(): void {
    this.timer = undefined;
    if (this.lastWait) return this.onGiveUp(true);
    if (this.count >= this.policy.maxRetransmits) return this.onGiveUp(false);
    this.count++;
    this.timeoutMs = Math.min(this.timeoutMs * 2, this.policy.maxMs);
    this.onRetransmit();
    this.start(false);
  }
}
