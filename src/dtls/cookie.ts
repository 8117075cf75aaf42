/**
 * Stateless HelloVerifyRequest cookies (RFC 6347 section 4.2.1).
 *
 * The cookie proves that the client can receive at the address it claims before the server
 * spends anything on it: no per-client state, no key lookup. It is an HMAC, under a secret
 * that rotates, over the client's address and port and the ClientHello fields that a client
 * repeats unchanged in its second ClientHello: version, random, cipher suites and compression
 * methods. Not session_id: RFC 6347 4.2.1 lists it too, but clients that present a session
 * ticket (mbedTLS 2.28) draw a fresh session_id for each ClientHello, and binding it would
 * send them HelloVerifyRequests forever; leaving it out weakens nothing the cookie is for
 * (proof that the client receives at its address; the random still ties the cookie to this
 * hello). The previous secret stays valid for one period, so a cookie issued just before a
 * rotation still verifies.
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
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: readonly number[];
}

/** Why a cookie did not verify, for the debug log line. */
export type CookieFailure = 'wrong_length' | 'no_match';

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
    return this.check(input, cookie) === undefined;
  }

  /** undefined when the cookie verifies, else why not (no_match: expired, or another hello's). */
  check(input: CookieInput, cookie: Buffer): CookieFailure | undefined {
    if (cookie.length !== COOKIE_LENGTH) return 'wrong_length';
    this.rotateIfDue();
    // Most cookies are answered within the period that issued them; the previous secret is
    // tried only when the current one fails. That timing tells a client only which period its
    // own cookie came from, which it knows anyway; each comparison itself is constant time.
    const message = cookieMessage(input);
    if (timingSafeEqual(cookieUnder(this.current, message), cookie)) return undefined;
    return timingSafeEqual(cookieUnder(this.previous, message), cookie) ? undefined : 'no_match';
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

/**
 * len(1) ‖ address ‖ port(2) ‖ client_version(2) ‖ len(1) ‖ random ‖ count(2) ‖ cipher_suites(2 each)
 * ‖ count(1) ‖ compression_methods(1 each): every variable field is prefixed with its length, so
 * no two inputs make the same message.
 */
function cookieMessage(input: CookieInput): Buffer {
  const addressLength = Buffer.byteLength(input.address, 'latin1');
  const m = Buffer.allocUnsafe(1 + addressLength + 4 + 1 + input.random.length + 2 + input.cipherSuites.length * 2 + 1 + input.compressionMethods.length);
  let at = m.writeUInt8(addressLength & 0xff, 0);
  at += m.write(input.address, at, 'latin1');
  at = m.writeUInt16BE(input.port, at);
  at = m.writeUInt16BE(input.clientVersion, at);
  at = m.writeUInt8(input.random.length & 0xff, at);
  at += input.random.copy(m, at);
  at = m.writeUInt16BE(input.cipherSuites.length & 0xffff, at);
  for (const suite of input.cipherSuites) at = m.writeUInt16BE(suite, at);
  at = m.writeUInt8(input.compressionMethods.length & 0xff, at);
  for (const method of input.compressionMethods) at = m.writeUInt8(method, at);
  return m;
}
