/**
 * NewSessionTicket (RFC 5077 section 3.3):
 *
 *   struct { uint32 ticket_lifetime_hint; opaque ticket<0..2^16-1>; } NewSessionTicket;
 *
 * Sent by the server after the client's Finished (full handshake) or before its own Finished
 * (abbreviated handshake), and only when its ServerHello carried an empty SessionTicket
 * extension. A lifetime hint of 0 means "no recommendation". An empty ticket tells the client
 * to drop the one it presented without the server issuing a new one.
 */

import { decode, vector } from '../wire.js';

export interface NewSessionTicket {
  /** Seconds the client may keep the ticket (a hint: the server decides on its own clock). */
  ticketLifetimeHint: number;
  ticket: Buffer;
}

export const MAX_TICKET_LENGTH = 0xffff;

export function parseNewSessionTicket(body: Buffer): NewSessionTicket | undefined {
  return decode(body, (r) => {
    const ticketLifetimeHint = r.u16() * 0x10000 + r.u16();
    return { ticketLifetimeHint, ticket: r.vector(2, 0, MAX_TICKET_LENGTH) };
  });
}

export function encodeNewSessionTicket(nst: NewSessionTicket): Buffer {
  if (!Number.isInteger(nst.ticketLifetimeHint) || nst.ticketLifetimeHint < 0 || nst.ticketLifetimeHint > 0xffffffff) {
    throw new RangeError(`ticket_lifetime_hint ${nst.ticketLifetimeHint} outside uint32`);
  }
  const hint = Buffer.allocUnsafe(4);
  hint.writeUInt32BE(nst.ticketLifetimeHint);
  return Buffer.concat([hint, vector(2, nst.ticket, 0, MAX_TICKET_LENGTH, 'ticket')]);
}
