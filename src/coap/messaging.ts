/**
 * Our own confirmable messages (separate responses, CON notifications): retransmitted with
 * exponential back-off from ACK_TIMEOUT × a random factor up to MAX_RETRANSMIT times
 * (RFC 7252 4.2, 4.8), stopped by the matching ACK, cancelled by a matching RST.
 *
 * One timer per message in flight, made with `setTimeout(fn, ms, arg)` over a shared function:
 * no closure per message.
 */
import type { ObserveRelation } from './observe.js';
import type { SessionState } from './session-state.js';

export interface RetransmitParams {
  /** ACK_TIMEOUT, ms. Default 2000. */
  ackTimeoutMs: number;
  /** ACK_RANDOM_FACTOR. Default 1.5. */
  randomFactor: number;
  /** MAX_RETRANSMIT. Default 4. */
  maxRetransmit: number;
}

export const DEFAULT_RETRANSMIT: RetransmitParams = { ackTimeoutMs: 2000, randomFactor: 1.5, maxRetransmit: 4 };

export class OutgoingCon {
  retransmissions = 0;
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly state: SessionState,
    readonly messageId: number,
    readonly datagram: Buffer,
    public timeoutMs: number,
    readonly params: RetransmitParams,
    /** The relation a notification belongs to: told of its ACK, RST or timeout. */
    readonly relation: ObserveRelation | undefined,
  ) {}
}

/** Sends a CON and keeps it until ACK, RST, the last retransmission or the session's end. */
export function sendConfirmable(
  state: SessionState,
  messageId: number,
  datagram: Buffer,
  params: RetransmitParams,
  relation?: ObserveRelation,
  retransmissions = 0,
): OutgoingCon {
  const initial = params.ackTimeoutMs * (1 + Math.random() * (params.randomFactor - 1));
  const out = new OutgoingCon(state, messageId, datagram, initial * 2 ** retransmissions, params, relation);
  out.retransmissions = retransmissions;
  state.outgoing.set(messageId, out);
  state.send(datagram);
  arm(out);
  return out;
}

function arm(out: OutgoingCon): void {
  out.timer = setTimeout(onTimeout, out.timeoutMs, out);
  out.timer.unref();
}

function onTimeout(out: OutgoingCon): void {
  out.timer = undefined;
  const state = out.state;
  if (state.outgoing.get(out.messageId) !== out) return;
  if (state.closed || out.retransmissions >= out.params.maxRetransmit) {
    state.outgoing.delete(out.messageId);
    out.relation?.confirmableFailed(out);
    return;
  }
  out.retransmissions++;
  out.timeoutMs *= 2;
  state.send(out.datagram);
  arm(out);
}

/** Stops one message's retransmission (without telling its relation). */
export function cancelOutgoing(out: OutgoingCon): void {
  if (out.timer !== undefined) clearTimeout(out.timer);
  out.timer = undefined;
  if (out.state.outgoing.get(out.messageId) === out) out.state.outgoing.delete(out.messageId);
}

/** An empty ACK (or a piggybacked one) for one of ours: true when it matched. */
export function acknowledge(state: SessionState, messageId: number): boolean {
  const out = state.outgoing.get(messageId);
  if (out === undefined) return false;
  cancelOutgoing(out);
  out.relation?.acknowledged(out);
  return true;
}

/** A RST for one of ours: the peer refuses it (RFC 7252 4.2; RFC 7641 3.6 for a notification). */
export function resetOutgoing(state: SessionState, messageId: number): boolean {
  const out = state.outgoing.get(messageId);
  if (out === undefined) return false;
  cancelOutgoing(out);
  out.relation?.close('reset');
  return true;
}

/** The session ended: every timer stops. */
export function dropOutgoing(state: SessionState): void {
  for (const out of state.outgoing.values()) if (out.timer !== undefined) clearTimeout(out.timer);
  state.outgoing.clear();
}
