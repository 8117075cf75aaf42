/**
 * One Observe relation (RFC 7641): a client's registration on one resource, identified by the
 * session and the token. It ends by deregistration (GET with Observe: 1), a re-registration with
 * the same token (the new one replaces it), a RST to a notification, a CON notification never
 * acknowledged, a final response from the handler, or the end of the session; the handler is
 * told each time (`res.onClose`).
 *
 * Notifications carry a 24-bit sequence number (section 4.4). A relation registered with CON
 * gets CON notifications; one registered with NON gets NON ones, but a CON at least every 24 h
 * (section 4.5: to learn whether the client is still there). A new notification while a CON one
 * is still unacknowledged is sent as CON too, in its place, keeping its retransmission count
 * (section 4.5.2).
 */
import { encodeMessage, MessageType, type CoapOption } from './message.js';
import { cancelOutgoing, sendConfirmable, type OutgoingCon, type RetransmitParams } from './messaging.js';
import { OPTION, uintValue } from './options.js';
import type { SessionState } from './session-state.js';

export const CON_NOTIFICATION_EVERY_MS = 24 * 3600_000;

/** The response side a relation reports its end to. */
export interface RelationOwner {
  relationEnded(reason: string): void;
}

export class ObserveRelation {
  closed = false;
  /** The Message ID of the latest NON notification: a RST naming it ends the relation. */
  lastNonMessageId = -1;
  private pending: OutgoingCon | undefined = undefined;
  private lastConAt: number;
  private seq = 2;

  constructor(
    readonly state: SessionState,
    readonly tokenKey: string,
    /** A view into `registration`: the request's token is a view into its datagram. */
    readonly token: Buffer,
    readonly confirmable: boolean,
    private readonly owner: RelationOwner,
    private readonly params: RetransmitParams,
    now: number,
    /**
     * The registering request, encoded again into memory of its own (RFC 7252 3): what a
     * graceful restart runs again in the new process (src/coap/handover.ts).
     */
    readonly registration: Buffer,
  ) {
    this.lastConAt = now;
  }

  /** The next Observe value (RFC 7641 4.4: increasing, 24 bits). */
  nextSequence(): number {
    this.seq = (this.seq + 1) & 0xffffff;
    return this.seq;
  }

  /** The last Observe value sent (or the one a hand-over continues above). */
  get sequence(): number {
    return this.seq;
  }

  /** When the last CON notification went (the 24 h rule of RFC 7641 4.5 counts from it). */
  get lastConfirmableAt(): number {
    return this.lastConAt;
  }

  /**
   * A relation handed over by another process (handover.ts) goes on from its numbers: the next
   * notification is `sequence` + 1, fresh for the client (RFC 7641 3.4, 4.4).
   */
  continueFrom(sequence: number, lastConAt: number): void {
    this.seq = sequence & 0xffffff;
    this.lastConAt = lastConAt;
  }

  observeOption(): CoapOption {
    return { number: OPTION.Observe, value: uintValue(this.nextSequence()) };
  }

  /** Sends one notification; `options` must already hold the Observe option and be sorted. */
  notify(code: number, options: readonly CoapOption[], payload: Buffer | undefined, now: number): void {
    if (!this.closed) this.send(code, options, payload, now);
  }

  /** The last message of a relation that has just been closed (a final response, without Observe). */
  sendLast(code: number, options: readonly CoapOption[], payload: Buffer | undefined, now: number): void {
    if (this.closed && !this.state.closed) this.send(code, options, payload, now);
  }

  private send(code: number, options: readonly CoapOption[], payload: Buffer | undefined, now: number): void {
    const con = this.confirmable || this.pending !== undefined || now - this.lastConAt >= CON_NOTIFICATION_EVERY_MS;
    const mid = this.state.nextMessageId();
    const datagram = encodeMessage(con ? MessageType.CON : MessageType.NON, code, mid, this.token, options, payload);
    if (!con) {
      this.lastNonMessageId = mid;
      this.state.send(datagram);
      return;
    }
    let retransmissions = 0;
    if (this.pending !== undefined) {
      retransmissions = this.pending.retransmissions;
      cancelOutgoing(this.pending);
      this.pending = undefined;
    }
    this.lastConAt = now;
    const out = sendConfirmable(this.state, mid, datagram, this.params, this.closed ? undefined : this, retransmissions);
    if (!this.closed) this.pending = out;
  }

  acknowledged(out: OutgoingCon): void {
    if (this.pending === out) this.pending = undefined;
  }

  /** MAX_RETRANSMIT reached for a notification: the client is taken to be gone (RFC 7641 4.5). */
  confirmableFailed(out: OutgoingCon): void {
    if (this.pending === out) {
      this.pending = undefined;
      this.close('timeout');
    }
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.state.relations.get(this.tokenKey) === this) this.state.relations.delete(this.tokenKey);
    if (this.pending !== undefined) cancelOutgoing(this.pending);
    this.pending = undefined;
    this.owner.relationEnded(reason);
  }
}

/** The relation a RST names by the Message ID of a NON notification, if any. */
export function relationByNonMessageId(state: SessionState, messageId: number): ObserveRelation | undefined {
  for (const r of state.relations.values()) if (r.lastNonMessageId === messageId) return r;
  return undefined;
}

/** The session ended: every relation ends, the handlers are told. */
export function dropRelations(state: SessionState, reason: string): void {
  for (const r of [...state.relations.values()]) r.close(reason);
  state.relations.clear();
}
