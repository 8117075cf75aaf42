/**
 * Graceful restart, the CoAP side (docs/graceful-restart.md): a session's CoAP state as an
 * opaque blob that the DTLS hand-over carries beside the session (src/dtls/session-export.ts
 * knows nothing of what is in it), and that state taken up again in the new process.
 *
 * Carried, per session: every Observe relation (RFC 7641) - its registering request, whether it
 * was CON or NON, the last Observe number sent and when the last CON notification went - and
 * the last Message ID of our own messages. The new process runs each registration through its
 * router again, as if the device had sent it, with the relation already standing: the handler
 * sets up its notifications again, and its first write() is a notification on the same token.
 *
 * Not carried: the reply cache (RFC 7252 4.5: a CON retransmitted across the restart runs its
 * handler again), Block1 uploads in progress (the device gets 4.08 and starts over), CON
 * messages awaiting their ACK (the old process retransmits them until it exits; an ACK that
 * reaches the new process names nothing and is dropped).
 *
 * The old process may still send notifications and messages while it drains (2 s at most), so
 * the exported numbers are past its own: Observe + OBSERVE_GAP, Message ID + MESSAGE_ID_GAP.
 * Observe numbers stay fresh for the client (RFC 7641 3.4: a step under 2^23), and Message IDs
 * are not repeated within EXCHANGE_LIFETIME (RFC 7252 4.4).
 *
 * Format (ours, version 1), big-endian:
 *   uint8 version = 1; uint16 last_message_id; uint8 count;
 *   count × { uint8 flags (bit 0: confirmable); uint24 observe; uint48 last_con_at (ms since 1970);
 *             opaque registration<4..2^16-1> (the registering request, RFC 7252 3) }
 */
import { NO_ENTRY } from './dedup.js';
import { CoapRequest, CoapResponse, type ExchangeContext } from './exchange.js';
import { parseMessage } from './message.js';
import { ObserveRelation } from './observe.js';
import type { SessionState } from './session-state.js';

const VERSION = 1;
const FLAG_CON = 1;
const MAX_REGISTRATION = 0xffff;
/** Observe numbers the old process may still use after the export (RFC 7641 4.4: 24 bits). */
export const OBSERVE_GAP = 2 ** 16;
/** Message IDs the old process may still use after the export (RFC 7252 4.4: 16 bits). */
export const MESSAGE_ID_GAP = 2 ** 10;
/** Skipped again by the old process after a failed hand-over, past what the new one may have used. */
export const FAILED_OBSERVE_SKIP = 2 ** 20;
export const FAILED_MESSAGE_ID_SKIP = 2 ** 13;

export interface SavedRelation {
  readonly confirmable: boolean;
  readonly observe: number;
  readonly lastConAt: number;
  readonly registration: Buffer;
}

export interface SavedSession {
  readonly lastMessageId: number;
  readonly relations: readonly SavedRelation[];
}

/** A relation standing again, its handler to run (CoapEndpoint.resumeRestored). */
export interface Resumable {
  readonly req: CoapRequest;
  readonly res: CoapResponse;
}

/** The blob of one session (see the format above). */
export function encodeSessionState(state: SessionState): Buffer {
  const relations = [...state.relations.values()].filter((r) => !r.closed && r.registration.length <= MAX_REGISTRATION).slice(0, 255);
  const head = Buffer.alloc(4);
  head[0] = VERSION;
  head.writeUInt16BE((state.lastMessageId + MESSAGE_ID_GAP) & 0xffff, 1);
  head[3] = relations.length;
  const parts: Buffer[] = [head];
  for (const r of relations) {
    const fixed = Buffer.alloc(1 + 3 + 6 + 2);
    fixed[0] = r.confirmable ? FLAG_CON : 0;
    fixed.writeUIntBE((r.sequence + OBSERVE_GAP) & 0xffffff, 1, 3);
    fixed.writeUIntBE(Math.max(0, Math.floor(r.lastConfirmableAt)), 4, 6);
    fixed.writeUInt16BE(r.registration.length, 10);
    parts.push(fixed, r.registration);
  }
  return Buffer.concat(parts);
}

/** Undefined for anything malformed or of another version; never throws. */
export function decodeSessionState(blob: Buffer): SavedSession | undefined {
  if (blob.length < 4 || blob[0] !== VERSION) return undefined;
  const lastMessageId = blob.readUInt16BE(1);
  const count = blob[3]!;
  const relations: SavedRelation[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 12 > blob.length) return undefined;
    const flags = blob[at]!;
    const length = blob.readUInt16BE(at + 10);
    if ((flags & ~FLAG_CON) !== 0 || length < 4 || at + 12 + length > blob.length) return undefined;
    // Its own memory: the relation keeps it for as long as it stands (see CONTRIBUTING).
    const registration = Buffer.allocUnsafeSlow(length);
    blob.copy(registration, 0, at + 12, at + 12 + length);
    relations.push({ confirmable: (flags & FLAG_CON) !== 0, observe: blob.readUIntBE(at + 1, 3), lastConAt: blob.readUIntBE(at + 4, 6), registration });
    at += 12 + length;
  }
  return at === blob.length ? { lastMessageId, relations } : undefined;
}

/**
 * Makes the saved relations stand in `state` (at most `maxRelations`; a registration that does
 * not parse as a GET or FETCH with a token is left out): from now on a RST, a deregistration or
 * a re-registration of the device finds them. Their handlers run later (resumeRestored).
 */
export function restoreRelations(ctx: ExchangeContext, state: SessionState, saved: SavedSession, maxRelations: number): Resumable[] {
  state.continueMessageIds(saved.lastMessageId);
  const out: Resumable[] = [];
  for (const s of saved.relations) {
    if (state.relations.size >= maxRelations) break;
    const msg = parseMessage(s.registration);
    if (msg === undefined || (msg.code !== 1 && msg.code !== 5) || msg.token.length === 0) continue;
    const key = msg.token.toString('hex');
    if (state.relations.has(key)) continue;
    const req = new CoapRequest(state.peer, state.transport, msg, 0);
    const res = new CoapResponse(ctx, state, req, NO_ENTRY);
    // Notifications start at block 0 whatever block the registration asked for (RFC 7959 3.4).
    res.takeBlockOptions(msg);
    res.block2Num = 0;
    const relation = new ObserveRelation(state, key, msg.token, s.confirmable, res, ctx.retransmit, s.lastConAt, s.registration);
    relation.continueFrom(s.observe, s.lastConAt);
    state.relations.set(key, relation);
    res.resumeRelation(relation);
    out.push({ req, res });
  }
  return out;
}

/**
 * After a hand-over that failed half-way the old process serves on, and the new one may have
 * sent notifications and messages numbered past the gaps: its own go on beyond those.
 */
export function skipAfterFailedHandover(state: SessionState): void {
  state.continueMessageIds(state.lastMessageId + MESSAGE_ID_GAP + FAILED_MESSAGE_ID_SKIP);
  for (const r of state.relations.values()) r.continueFrom(r.sequence + OBSERVE_GAP + FAILED_OBSERVE_SKIP, r.lastConfirmableAt);
}
