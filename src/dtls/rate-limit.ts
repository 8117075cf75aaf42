/**
 * Per-source handshake rate limit: a token bucket per source (not per port, since a flood
 * rotates source ports). An IPv4 source is its address; an IPv6 source is its /64, the
 * smallest block a host is usually given (RFC 4291 2.5.4; one host can draw any address from
 * it). The map is bounded: when full, the bucket untouched the longest goes, so a flood of new
 * sources forgives at worst the quietest old ones, never everyone at once.
 */
export class SourceRateLimiter {
  /** In order of last use, oldest first (a Map iterates in insertion order). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** Sustained handshakes per second per source; 0 turns the limit off. */
    private readonly perSecond: number,
    /** Handshakes allowed at once before the rate applies. */
    private readonly burst: number,
    private readonly maxSources = 65_536,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `address`; false when its source is over its rate. */
  take(address: string): boolean {
    if (this.perSecond <= 0) return true;
    const t = this.now();
    const key = sourceKey(address);
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-inserted below: now the most recently used
    } else {
      if (this.buckets.size >= this.maxSources) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: t };
    }
    this.buckets.set(key, b);
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Sources tracked now. */
  get size(): number {
    return this.buckets.size;
  }
}

/** The rate-limit key of an address: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function sourceKey(address: string): string {
  // An address from the socket: IPv6 exactly when it has a colon (net.isIPv6's regex was ~1 µs a ClientHello).
  if (!address.includes(':')) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  // An embedded IPv4 tail (64:ff9b::1.2.3.4) counts as the two groups it stands for.
  const hex = address.replace(/:(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a, b, c, d) => `:${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
  const [head, tail = ''] = hex.split('::');
  const left = head ? head.split(':') : [];
  const right = hex.includes('::') && tail ? tail.split(':') : [];
  const groups = hex.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':') + '::/64';
}
