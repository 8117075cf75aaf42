/**
 * Everything CoAP keeps for one DTLS session: the duplicate-detection entries of its requests,
 * its confirmable messages awaiting an ACK, its Observe relations and its Block1 uploads. It is
 * made when the session opens and dropped whole when the session ends or is replaced, so a
 * device that reboots onto the same address and port starts with nothing of its predecessor.
 */
import type { Block1Assembly } from './block.js';
import type { SessionDedup } from './dedup.js';
import type { OutgoingCon } from './messaging.js';
import type { ObserveRelation } from './observe.js';
import type { CoapTransport, PeerIdentity } from './transport.js';

export class SessionState {
  /** Its last requests in the reply cache (RFC 7252 4.5), from its first request on. */
  dedup: SessionDedup | undefined = undefined;
  /** Our CON messages (separate responses, notifications) awaiting an ACK, by Message ID. */
  readonly outgoing = new Map<number, OutgoingCon>();
  /** Observe relations by token (hex), RFC 7641 3.1. */
  readonly relations = new Map<string, ObserveRelation>();
  /** Block1 uploads being assembled, by method, Uri-Path and Request-Tag (RFC 7959 2.5, RFC 9175). */
  readonly block1 = new Map<string, Block1Assembly>();
  closed = false;
  private mid = (Math.random() * 0x10000) | 0;

  constructor(readonly transport: CoapTransport, readonly peer: PeerIdentity) {}

  send(data: Buffer): boolean {
    if (this.closed || !this.transport.isOpen) return false;
    return this.transport.send(data);
  }

  /** Message IDs of our own messages: sequential from a random start (RFC 7252 4.4). */
  nextMessageId(): number {
    this.mid = (this.mid + 1) & 0xffff;
    return this.mid;
  }

  /** The last Message ID used; a hand-over continues above it (handover.ts). */
  get lastMessageId(): number {
    return this.mid;
  }

  continueMessageIds(last: number): void {
    this.mid = last & 0xffff;
  }
}
