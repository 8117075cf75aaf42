/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 section 4.2.1).
 *
 * The cookie proves that the client can receive at the address it claims before the server
 * spends anything on it: no per-client state, no key lookup. It is an HMAC, under a secret
 * that rotates, over the client's address and port and the ClientHello fields that a client
 * must repeat unchanged in its second ClientHello. The previous secret stays valid for one
 * period, so a cookie issued just before a rotation still verifies.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const COOKIE_LENGTH = 16;

/** The ClientHello fields the cookie covers (the cookie field itself is excluded). */
export interface CookieInput {
  readonly address: string;
  readonly port: number;
  readonly clientVersion: number;
  readonly random: Buffer;
  readonly sessionId: Buffer;
  readonly cipherSuites: readonly number[];
}

export class CookieJar {
  private current = randomBytes(32);
  private previous = randomBytes(32);
  private rotatedAt: number;

  constructor(
    private readonly rotationMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.rotatedAt = now();
  }

  issue(input: CookieInput): Buffer {
    this.rotateIfDue();
    return mac(this.current, input);
  }

  verify(input: CookieInput, cookie: Buffer): boolean {
    if (cookie.length !== COOKIE_LENGTH) return false;
    this.rotateIfDue();
    // Both comparisons always run, so timing does not tell which secret matched.
    const a = timingSafeEqual(mac(this.current, input), cookie);
    const b = timingSafeEqual(mac(this.previous, input), cookie);
    return a || b;
  }

  /** Rotation is lazy (checked on use), so the jar needs no timer to keep a process alive. */
  private rotateIfDue(): void {
    const t = this.now();
    if (t - this.rotatedAt < this.rotationMs) return;
    this.previous = t - this.rotatedAt < 2 * this.rotationMs ? this.current : randomBytes(32);
    this.current = randomBytes(32);
    this.rotatedAt = t;
  }
}

function mac(secret: Buffer, input: CookieInput): Buffer {
  const h = createHmac('sha256', secret);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt16BE(input.port, 0);
  head.writeUInt16BE(input.clientVersion, 2);
  h.update(input.address).update(head).update(input.random).update(input.sessionId);
  const suites = Buffer.allocUnsafe(input.cipherSuites.length * 2);
  input.cipherSuites.forEach((s, i) => suites.writeUInt16BE(s, i * 2));
  h.update(suites);
  return h.digest().subarray(0, COOKIE_LENGTH);
}
