/**
 * Per-source-address handshake rate limit: a token bucket per IP address (not per port, since
 * a flood rotates source ports). The map is bounded; when full it is cleared rather than
 * grown, which at worst forgives the current sources for one refill period.
 */
export class SourceRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** Sustained handshakes per second per address; 0 turns the limit off. */
    private readonly perSecond: number,
    /** Handshakes allowed at once before the rate applies. */
    private readonly burst: number,
    private readonly maxSources = 65_536,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `address`; false when the address is over its rate. */
  take(address: string): boolean {
    if (this.perSecond <= 0) return true;
    const t = this.now();
    let b = this.buckets.get(address);
    if (!b) {
      if (this.buckets.size >= this.maxSources) this.buckets.clear();
      b = { tokens: this.burst, at: t };
      this.buckets.set(address, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
