/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 section 4.2.1).
 *
 * The cookie proves that the client can receive at the address it claims before the server
 * spends anything on it: no per-client state, no key lookup. It is an HMAC, under a secret
 * that rotates, over the client's address and port and the ClientHello fields that a client
 * must repeat unchanged in its second ClientHello. The previous secret stays valid for one
 * period, so a cookie issued just before a rotation still verifies.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HmacSha256 } from './hmac.js';

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
  private current = freshSecret();
  private previous = freshSecret();
  private rotatedAt: number;

  constructor(
    private readonly rotationMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.rotatedAt = now();
  }

  issue(input: CookieInput): Buffer {
    this.rotateIfDue();
    return cookieUnder(this.current, cookieMessage(input));
  }

  verify(input: CookieInput, cookie: Buffer): boolean {
    if (cookie.length !== COOKIE_LENGTH) return false;
    this.rotateIfDue();
    // Most cookies are answered within the period that issued them; the previous secret is
    // tried only when the current one fails. That timing tells a client only which period its
    // own cookie came from, which it knows anyway; each comparison itself is constant time.
    const message = cookieMessage(input);
    if (timingSafeEqual(cookieUnder(this.current, message), cookie)) return true;
    return timingSafeEqual(cookieUnder(this.previous, message), cookie);
  }

  /** Rotation is lazy (checked on use), so the jar needs no timer to keep a process alive. */
  private rotateIfDue(): void {
    const t = this.now();
    if (t - this.rotatedAt < this.rotationMs) return;
    const retired = this.previous;
    this.previous = t - this.rotatedAt < 2 * this.rotationMs ? this.current : freshSecret();
    this.current = freshSecret();
    retired.wipe();
    this.rotatedAt = t;
  }
}

/** A cookie secret, held only as its HMAC key schedule. */
function freshSecret(): HmacSha256 {
  const secret = randomBytes(32);
  const hmac = new HmacSha256(secret);
  secret.fill(0);
  return hmac;
}

/** The cookie for a message under one secret: its HMAC, truncated. */
function cookieUnder(secret: HmacSha256, message: Buffer): Buffer {
  return secret.digest(message).subarray(0, COOKIE_LENGTH);
}

/** address ‖ port(2) ‖ client_version(2) ‖ random ‖ session_id ‖ cipher_suites(2 each). */
function cookieMessage(input: CookieInput): Buffer {
  const addressLength = Buffer.byteLength(input.address, 'latin1');
  const m = Buffer.allocUnsafe(addressLength + 4 + input.random.length + input.sessionId.length + input.cipherSuites.length * 2);
  let at = m.write(input.address, 0, 'latin1');
  at = m.writeUInt16BE(input.port, at);
  at = m.writeUInt16BE(input.clientVersion, at);
  at += input.random.copy(m, at);
  at += input.sessionId.copy(m, at);
  for (const suite of input.cipherSuites) at = m.writeUInt16BE(suite, at);
  return m;
}
