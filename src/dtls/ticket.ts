/**
 * Stateless session tickets (RFC 5077) in the format RFC 5077 section 4 recommends:
 *
 *   struct {
 *     opaque key_name[16];
 *     opaque iv[16];
 *     opaque encrypted_state<0..2^16-1>;   AES-128-CBC (PKCS#7 padding) of session-state.ts
 *     opaque mac[32];                      HMAC-SHA-256 over key_name ‖ iv ‖ encrypted_state
 *   } ticket;                              (the length of encrypted_state included)
 *
 * Any server holding the key ring opens the ticket: resuming needs neither the HSM nor state
 * shared between servers. Opening never throws: a ticket that is malformed, names a key the ring
 * does not hold, fails its MAC, or is past its lifetime yields undefined, and the handshake goes
 * on as a full one (RFC 5077 3.4). The MAC is checked before anything is decrypted, in constant
 * time, and nothing is allocated for a ticket beyond what arrived.
 */

import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type ResumableSession, encodeSessionState, parseSessionState } from './session-state.js';
import { KEY_NAME_LENGTH, type TicketKey, type TicketKeyRing } from './ticket-keys.js';
import { decode, vector } from './wire.js';

export const TICKET_IV_LENGTH = 16;
export const TICKET_MAC_LENGTH = 32;
/** Default ticket lifetime: a day of sleeping between wake-ups. */
export const DEFAULT_TICKET_LIFETIME_MS = 24 * 3600_000;
/** Tickets issued up to this far in the future are accepted (clocks of several nodes differ). */
const CLOCK_SKEW_MS = 60_000;

export function sealTicket(key: TicketKey, state: ResumableSession): Buffer {
  const iv = randomBytes(TICKET_IV_LENGTH);
  const cipher = createCipheriv('aes-128-cbc', key.aesKey, iv);
  const plaintext = encodeSessionState(state);
  const encrypted = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  plaintext.fill(0); // it holds the master secret
  const body = Buffer.concat([key.name, iv, vector(2, encrypted, 0, 0xffff, 'encrypted_state')]);
  const mac = createHmac('sha256', key.hmacKey).update(body).digest();
  return Buffer.concat([body, mac]);
}

export interface OpenTicketOptions {
  /** ms since 1970; Date.now() when absent. */
  now?: number;
  lifetimeMs: number;
}

export function openTicket(ring: TicketKeyRing, ticket: Buffer, options: OpenTicketOptions): ResumableSession | undefined {
  const parts = decode(ticket, (r) => ({
    name: r.bytes(KEY_NAME_LENGTH),
    iv: r.bytes(TICKET_IV_LENGTH),
    encrypted: r.vector(2, 16, 0xffff),
    mac: r.bytes(TICKET_MAC_LENGTH),
  }));
  if (!parts || parts.encrypted.length % 16 !== 0) return undefined;
  const key = ring.find(parts.name);
  if (!key) return undefined;
  const body = ticket.subarray(0, ticket.length - TICKET_MAC_LENGTH);
  const mac = createHmac('sha256', key.hmacKey).update(body).digest();
  if (!timingSafeEqual(mac, parts.mac)) return undefined;
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-128-cbc', key.aesKey, parts.iv);
    plaintext = Buffer.concat([decipher.update(parts.encrypted), decipher.final()]);
  } catch {
    return undefined; // bad padding under a valid MAC: only a sealer with our key could do that
  }
  const state = parseSessionState(plaintext);
  plaintext.fill(0);
  if (!state) return undefined;
  const now = options.now ?? Date.now();
  if (state.issuedAt > now + CLOCK_SKEW_MS || now - state.issuedAt >= options.lifetimeMs) return undefined;
  return state;
}
