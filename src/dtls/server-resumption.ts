/**
 * What the server does about resumption for one cookie-verified ClientHello (docs/resumption.md,
 * "When the server issues what"; RFC 5246 7.3, RFC 5077 3.1-3.4, RFC 7627 5.3):
 *
 *  - a ticket that opens, or a session ID in the cache, whose session `resumeDecision` allows and
 *    whose identity is not refused: abbreviated handshake, no key lookup;
 *  - otherwise a full handshake; it gets a fresh session ID (cached at its end) when the client
 *    did not offer the SessionTicket extension, and a NewSessionTicket when it did;
 *  - resumption off: a full handshake with an empty session ID and no ticket, whatever the
 *    client presented.
 *
 * A ticket or ID that does not resume is never an error: the handshake is a full one.
 */
import { CIPHER_SUITES } from './ciphers/index.js';
import { ExtensionType } from './constants.js';
import { type Extension, findExtension, encodeEcPointFormats, encodeFlagExtension } from './extensions.js';
import type { ClientHello } from './handshake/client-hello.js';
import type { NewSessionTicket } from './handshake/new-session-ticket.js';
import type { Negotiated } from './negotiation.js';
import { SessionCache } from './session-cache.js';
import { type ResumableSession, resumeDecision } from './session-state.js';
import { openTicket, sealTicket } from './ticket.js';
import { encodeSessionTicketExtension, readSessionTicketOffer } from './ticket-extension.js';
import type { TicketKeyRing } from './ticket-keys.js';

export type ResumedKind = 'id' | 'ticket';

/** What the handshake does about resumption, decided before it starts. */
export interface ResumptionPlan {
  /** ServerHello's session_id: the client's when resuming, a fresh one to cache, or empty. */
  readonly sessionId: Buffer;
  /** The session this handshake resumes (abbreviated handshake), with how it was found. */
  readonly resumes?: { readonly state: ResumableSession; readonly kind: ResumedKind };
  /** Present when ServerHello carries the empty SessionTicket extension and NewSessionTicket follows. */
  readonly issueTicket?: (state: ResumableSession) => NewSessionTicket;
  /** The full handshake's session is to be cached under `sessionId`. */
  readonly cache: boolean;
}

export const NO_RESUMPTION: ResumptionPlan = { sessionId: Buffer.alloc(0), cache: false };

export interface ResumptionContext {
  readonly ring: TicketKeyRing;
  readonly cache: SessionCache | undefined;
  readonly lifetimeMs: number;
  readonly serverSuites: readonly number[];
  /** The PSK lookup side's cheap check (deny list, identity pattern); no key is derived. */
  readonly refused?: (identity: Buffer) => boolean;
  readonly now?: () => number;
}

export function planResumption(ch: ClientHello, negotiated: Negotiated, ctx: ResumptionContext): ResumptionPlan | 'abort' {
  const offer = readSessionTicketOffer(ch.extensions);
  const now = ctx.now?.() ?? Date.now();
  const issueTicket = offer.offered ? (state: ResumableSession) => ticketFor(ctx, state, now) : undefined;
  const found = findSession(ch, offer.offered ? offer.ticket : undefined, ctx, now);
  if (found && !ctx.refused?.(found.state.identity)) {
    const decision = resumeDecision(found.state, { offersExtendedMasterSecret: negotiated.extendedMasterSecret, cipherSuites: ch.cipherSuites, version: found.state.version }, ctx.serverSuites);
    if (decision === 'abort') return 'abort';
    if (decision === 'resume' && (!found.state.encryptThenMac || offersEncryptThenMac(ch))) {
      // RFC 5077 3.4: a ticket's session is resumed by echoing the client's session ID.
      return { sessionId: ch.sessionId, resumes: found, issueTicket, cache: false };
    }
  }
  found?.state.masterSecret.fill(0);
  if (offer.offered) return { sessionId: Buffer.alloc(0), issueTicket, cache: false };
  return ctx.cache ? { sessionId: SessionCache.newSessionId(), cache: true } : NO_RESUMPTION;
}

function findSession(ch: ClientHello, ticket: Buffer | undefined, ctx: ResumptionContext, now: number): ResumptionPlan['resumes'] {
  if (ticket && ticket.length > 0) {
    const state = openTicket(ctx.ring, ticket, { now, lifetimeMs: ctx.lifetimeMs });
    if (state) return { state, kind: 'ticket' };
  }
  const state = ctx.cache?.get(ch.sessionId);
  return state ? { state, kind: 'id' } : undefined;
}

/** A renewed ticket keeps the original issue time: the lifetime bounds a master secret's use. */
function ticketFor(ctx: ResumptionContext, state: ResumableSession, now: number): NewSessionTicket {
  const left = Math.max(0, Math.floor((state.issuedAt + ctx.lifetimeMs - now) / 1000));
  return { ticketLifetimeHint: left, ticket: sealTicket(ctx.ring.current, state) };
}

function offersEncryptThenMac(ch: ClientHello): boolean {
  return findExtension(ch.extensions, ExtensionType.encrypt_then_mac) !== undefined;
}

/**
 * The ServerHello extensions for this handshake: the negotiated ones (for a resumed session,
 * from resumedNegotiation), and the empty SessionTicket extension when a NewSessionTicket
 * follows (RFC 5077 3.2).
 */
export function serverHelloExtensions(negotiated: Negotiated, plan: ResumptionPlan): Extension[] {
  return plan.issueTicket ? [...negotiated.extensions, encodeSessionTicketExtension()] : negotiated.extensions;
}

/**
 * The negotiation of a resumed handshake: the session's suite and its encrypt_then_mac choice
 * (RFC 7366 3.1), not this hello's pick; the other extensions as negotiated.
 */
export function resumedNegotiation(ch: ClientHello, negotiated: Negotiated, state: ResumableSession): Negotiated {
  const suite = CIPHER_SUITES.get(state.cipherSuite)!;
  const encryptThenMac = state.encryptThenMac && !suite.aead;
  const extensions = negotiated.extensions.filter((e) => e.type !== ExtensionType.encrypt_then_mac && e.type !== ExtensionType.ec_point_formats);
  if (encryptThenMac) extensions.push(encodeFlagExtension(ExtensionType.encrypt_then_mac));
  if (suite.keyExchange === 'ecdhe_psk' && findExtension(ch.extensions, ExtensionType.ec_point_formats)) extensions.push(encodeEcPointFormats([0]));
  return { suite, extendedMasterSecret: true, encryptThenMac, extensions };
}
