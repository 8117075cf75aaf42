/**
 * The SessionTicket extension (type 35, RFC 5077 section 3.2). Its extension_data is the ticket
 * itself, with no length of its own (RFC 5077 section 1 lists this as the correction to RFC
 * 4507). In a ClientHello: empty = "no ticket, but send me one"; non-empty = the ticket to
 * resume with. In a ServerHello: always empty, and only when a NewSessionTicket will follow;
 * a client reads that form with parseFlagExtension(exts, ExtensionType.session_ticket).
 */

import { ExtensionType } from './constants.js';
import { type Extension, findExtension } from './extensions.js';

export type ClientTicketOffer =
  | { offered: false }
  /** `ticket` is empty when the client asks for a ticket without presenting one; a view. */
  | { offered: true; ticket: Buffer };

export function readSessionTicketOffer(exts: readonly Extension[]): ClientTicketOffer {
  const e = findExtension(exts, ExtensionType.session_ticket);
  return e ? { offered: true, ticket: e.data } : { offered: false };
}

/** The ClientHello form (a ticket or empty) and, with no argument, the ServerHello form. */
export function encodeSessionTicketExtension(ticket: Buffer = Buffer.alloc(0)): Extension {
  if (ticket.length > 0xffff) throw new RangeError(`ticket of ${ticket.length} bytes`);
  return { type: ExtensionType.session_ticket, data: ticket };
}
