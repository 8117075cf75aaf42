/**
 * The CoAP server engine (RFC 7252 sections 4-5) over secure sessions: one `SessionState` per
 * DTLS session object, every message of a session classified here, requests handed to the
 * router, our own confirmables tracked (messaging.ts), Observe relations (observe.ts) and
 * block-wise transfers (block.ts) kept per session.
 *
 * Answers to what it cannot take (RFC 7252 4.2, 4.3, 5.4.1): a CON it cannot parse, an empty
 * CON (a "CoAP ping") and a CON or NON response to nothing get a RST; a CON request with an
 * unknown critical option gets 4.02; anything else malformed, and any ACK or RST naming nothing
 * of ours, is dropped silently.
 *
 * The request path holds no timer and makes no closure: a handler that answers synchronously is
 * answered with a piggybacked ACK straight away. A CON request still unanswered when the call
 * returns joins one list that a single shared timer sweeps: after `piggybackMs` it gets its
 * empty ACK, and the answer follows as a separate CON (RFC 7252 5.2.2).
 */
import { acceptBlock1, Block1Budget, dropAssemblies } from './block.js';
import { DedupCache, EXCHANGE_LIFETIME_MS, NON_LIFETIME_MS, NO_ENTRY } from './dedup.js';
import { CoapRequest, CoapResponse, type ExchangeContext } from './exchange.js';
import { emptyMessage, encodeMessage, MessageType, parseMessage, peekHeader, type CoapMessage, type CoapOption } from './message.js';
import { acknowledge, DEFAULT_RETRANSMIT, dropOutgoing, resetOutgoing, type RetransmitParams } from './messaging.js';
import { decodeSessionState, encodeSessionState, restoreRelations, skipAfterFailedHandover, type Resumable } from './handover.js';
import { dropRelations, relationByNonMessageId } from './observe.js';
import { decodeBlock, decodeUint, encodeBlock, encodeUint, findOption, firstUnknownCritical, OPTION } from './options.js';
import type { Router, RouterLogger } from './router.js';
import { SessionState } from './session-state.js';
import type { CoapTransport, PeerIdentity } from './transport.js';

export interface CoapEndpointOptions {
  /** Bytes of replies (and entry overhead) kept for duplicate detection, over all sessions. Default 16 MiB. */
  replyCacheBytes?: number;
  /** Observe relations per session at most; a registration beyond it is answered without Observe. Default 16. */
  maxObserveRelations?: number;
  /** Largest body a Block1 upload may reach; past it, 4.13 with Size1. Default 1 MiB. */
  maxBlock1Body?: number;
  /** Bytes all unfinished Block1 uploads together may hold; past it, 5.03. Default 64 MiB. */
  maxBlock1Total?: number;
  /** How long a CON request may wait for its handler before it gets an empty ACK. Default 50 ms. */
  piggybackMs?: number;
  /** Retransmission of our own CON messages (RFC 7252 4.8). */
  retransmit?: Partial<RetransmitParams>;
  /** Handler failures and protocol trouble. Default: console. */
  logger?: RouterLogger;
}

export const COAP_DEFAULTS = {
  replyCacheBytes: 16 * 1024 * 1024,
  maxObserveRelations: 16,
  maxBlock1Body: 1024 * 1024,
  maxBlock1Total: 64 * 1024 * 1024,
  piggybackMs: 50,
} as const;

const CODE_CONTINUE = 0x5f; // 2.31
const CODE_BAD_REQUEST = 0x80; // 4.00
const CODE_BAD_OPTION = 0x82; // 4.02
const CODE_INCOMPLETE = 0x88; // 4.08
const CODE_TOO_LARGE = 0x8d; // 4.13
const CODE_SERVICE_UNAVAILABLE = 0xa3; // 5.03
const CODE_PROXY_NOT_SUPPORTED = 0xa5; // 5.05
const NO_OPTIONS: CoapOption[] = [];

export class CoapEndpoint implements ExchangeContext {
  readonly dedup: DedupCache;
  readonly retransmit: RetransmitParams;
  private readonly states = new Map<CoapTransport, SessionState>();
  private readonly maxRelations: number;
  private readonly maxBlock1Body: number;
  private readonly block1Budget: Block1Budget;
  private readonly piggybackMs: number;
  private readonly logger: RouterLogger;
  private waiting: CoapResponse[] = [];
  private waitingSince: number[] = [];
  private sweepTimer: NodeJS.Timeout | undefined;
  private clock = 0;
  /** Relations handed over, whose handlers have not run again yet (resumeRestored). */
  private resumable: Resumable[] = [];

  constructor(private readonly router: Router, options: CoapEndpointOptions = {}) {
    this.dedup = new DedupCache(options.replyCacheBytes ?? COAP_DEFAULTS.replyCacheBytes);
    this.retransmit = { ...DEFAULT_RETRANSMIT, ...options.retransmit };
    this.maxRelations = options.maxObserveRelations ?? COAP_DEFAULTS.maxObserveRelations;
    this.maxBlock1Body = options.maxBlock1Body ?? COAP_DEFAULTS.maxBlock1Body;
    this.block1Budget = new Block1Budget(options.maxBlock1Total ?? COAP_DEFAULTS.maxBlock1Total);
    this.piggybackMs = options.piggybackMs ?? COAP_DEFAULTS.piggybackMs;
    this.logger = options.logger ?? console;
  }

  /** Bytes held by unfinished Block1 uploads, all sessions. */
  get block1Bytes(): number {
    return this.block1Budget.used;
  }

  /** Observe relations, all sessions (walks the sessions: for a metrics scrape, not the request path). */
  get observeRelations(): number {
    let n = 0;
    for (const state of this.states.values()) n += state.relations.size;
    return n;
  }

  /** Sessions with CoAP state. */
  get sessions(): number {
    return this.states.size;
  }

  /** The state of a session (tests and metrics read it). */
  stateOf(transport: CoapTransport): SessionState | undefined {
    return this.states.get(transport);
  }

  /** For notifications, written from the handlers' own timers: the clock of the datagram path would be stale. */
  now(): number {
    return Date.now();
  }

  responded(req: CoapRequest, res: CoapResponse): void {
    this.router.responded(req, res);
  }

  error(message: string, error?: unknown): void {
    this.logger.error(message, error);
  }

  /** A session was established: its CoAP state starts empty. */
  open(transport: CoapTransport, peer: PeerIdentity): void {
    const old = this.states.get(transport);
    if (old !== undefined) this.drop(old, 'replaced');
    this.states.set(transport, new SessionState(transport, peer));
  }

  /** A session ended (or was replaced by a new handshake): all its state goes, its relations end. */
  close(transport: CoapTransport, reason = 'session-closed'): void {
    const state = this.states.get(transport);
    if (state === undefined) return;
    this.states.delete(transport);
    this.drop(state, reason);
  }

  /** Every session's state goes (server shutdown). */
  closeAll(): void {
    for (const state of [...this.states.values()]) this.drop(state, 'server-closed');
    this.states.clear();
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.waiting = [];
    this.waitingSince = [];
  }

  // --- graceful restart (handover.ts) ---

  /** The CoAP state of a session, as the hand-over carries it; undefined for a session it has none of. */
  exportState(transport: CoapTransport): Buffer | undefined {
    const state = this.states.get(transport);
    return state === undefined ? undefined : encodeSessionState(state);
  }

  /**
   * A handed-over session's CoAP state (its session just opened here): its relations stand
   * from now on, their handlers run at resumeRestored(). False for a blob that is malformed.
   */
  restoreState(transport: CoapTransport, blob: Buffer): boolean {
    const state = this.states.get(transport);
    const saved = decodeSessionState(blob);
    if (state === undefined || saved === undefined) return false;
    for (const r of restoreRelations(this, state, saved, this.maxRelations)) this.resumable.push(r);
    return true;
  }

  /** Runs the registrations of the restored relations through the router again; how many ran. */
  resumeRestored(): number {
    const list = this.resumable;
    this.resumable = [];
    let n = 0;
    for (const { req, res } of list) {
      // Ended meanwhile: deregistered, reset, or its session closed.
      if (res.ended) continue;
      this.router.handle(req, res);
      n++;
    }
    return n;
  }

  /** The hand-over failed half-way: Observe numbers and Message IDs go on past the new process's. */
  skipAfterFailedHandover(): void {
    for (const state of this.states.values()) skipAfterFailedHandover(state);
  }

  private drop(state: SessionState, reason: string): void {
    state.closed = true;
    this.dedup.dropSession(state);
    dropOutgoing(state);
    dropRelations(state, reason);
    dropAssemblies(state, this.block1Budget);
  }

  /** One decrypted application record of a session. */
  receive(transport: CoapTransport, data: Buffer): void {
    const state = this.states.get(transport);
    if (state === undefined) return;
    this.clock = Date.now();
    const msg = parseMessage(data);
    if (msg === undefined) {
      // Format error (RFC 7252 4.2): a CON is rejected with a RST, anything else dropped.
      const h = peekHeader(data);
      if (h !== undefined && h.type === MessageType.CON) state.send(emptyMessage(MessageType.RST, h.messageId));
      return;
    }
    const cls = msg.code >> 5;
    if (msg.code === 0) this.empty(state, msg);
    else if (cls === 0) {
      if (msg.type === MessageType.CON || msg.type === MessageType.NON) this.request(state, msg);
    } else if (cls >= 2 && cls <= 5) {
      // We send no requests: a CON or NON response answers nothing (RFC 7252 4.2, 4.3).
      if (msg.type === MessageType.CON || msg.type === MessageType.NON) state.send(emptyMessage(MessageType.RST, msg.messageId));
    } else if (msg.type === MessageType.CON) {
      state.send(emptyMessage(MessageType.RST, msg.messageId)); // reserved classes 1, 6, 7
    }
  }

  private empty(state: SessionState, msg: CoapMessage): void {
    switch (msg.type) {
      case MessageType.CON: // CoAP ping (RFC 7252 4.3)
        state.send(emptyMessage(MessageType.RST, msg.messageId));
        return;
      case MessageType.ACK:
        acknowledge(state, msg.messageId);
        return;
      case MessageType.RST:
        if (!resetOutgoing(state, msg.messageId)) relationByNonMessageId(state, msg.messageId)?.close('reset');
        return;
      default:
        return;
    }
  }

  private request(state: SessionState, msg: CoapMessage): void {
    const now = this.clock;
    const con = msg.type === MessageType.CON;
    const seen = this.dedup.find(state, msg.messageId, now);
    if (seen !== NO_ENTRY) {
      // A duplicate (RFC 7252 4.5): the same reply again; the handler does not run again.
      if (!con) return;
      const reply = this.dedup.reply(seen);
      if (reply !== undefined) state.send(reply);
      else this.pendingResponseOf(msg.messageId, state)?.acknowledgeNow();
      return;
    }
    const entry = this.dedup.add(state, msg.messageId, con ? EXCHANGE_LIFETIME_MS : NON_LIFETIME_MS, now);
    const critical = firstUnknownCritical(msg.options);
    if (critical !== undefined) {
      if (con) this.answer(state, msg, entry, critical === OPTION.ProxyUri || critical === OPTION.ProxyScheme ? CODE_PROXY_NOT_SUPPORTED : CODE_BAD_OPTION);
      return;
    }
    if (findOption(msg.options, OPTION.ProxyUri) !== undefined || findOption(msg.options, OPTION.ProxyScheme) !== undefined) {
      this.answer(state, msg, entry, CODE_PROXY_NOT_SUPPORTED);
      return;
    }
    const isFetch = msg.code === 1 || msg.code === 5;
    const observeValue = isFetch ? findOption(msg.options, OPTION.Observe) : undefined;
    const observe = observeValue === undefined ? undefined : decodeUint(observeValue);
    const req = new CoapRequest(state.peer, state.transport, msg, observe);
    const res = new CoapResponse(this, state, req, entry);
    if (observe !== undefined) {
      const key = msg.token.toString('hex');
      const existing = state.relations.get(key);
      // RFC 7641 3.1 / 4.1: a registration with the token of a relation replaces it; Observe: 1 ends it.
      if (existing !== undefined) existing.close(observe === 0 ? 're-registered' : 'deregistered');
      if (observe === 0) res.observing = state.relations.size < this.maxRelations;
    }
    if (!res.takeBlockOptions(msg)) {
      this.answer(state, msg, entry, CODE_BAD_OPTION);
      return;
    }
    const b1 = findOption(msg.options, OPTION.Block1);
    if (b1 !== undefined && !this.block1(state, msg, entry, req, res, b1, now)) return;
    this.router.handle(req, res);
    if (con && !res.headersSent) this.awaitHandler(res, now);
  }

  /** Block1: true when the body is complete and the handler should run. */
  private block1(
    state: SessionState,
    msg: CoapMessage,
    entry: number,
    req: CoapRequest,
    res: CoapResponse,
    raw: Buffer,
    now: number,
  ): boolean {
    const block = decodeBlock(raw);
    if (block === undefined) {
      this.answer(state, msg, entry, CODE_BAD_OPTION);
      return false;
    }
    const size1 = findOption(msg.options, OPTION.Size1);
    const announced = size1 === undefined ? undefined : decodeUint(size1);
    if (announced !== undefined && announced > this.maxBlock1Body) {
      this.answer(state, msg, entry, CODE_TOO_LARGE, [{ number: OPTION.Size1, value: encodeUint(this.maxBlock1Body) }]);
      return false;
    }
    const key = `${msg.code}/${req.path.join('/')}/${req.option(OPTION.RequestTag)?.toString('hex') ?? ''}`;
    const outcome = acceptBlock1(state, key, block, msg.payload, this.maxBlock1Body, this.block1Budget, now);
    switch (outcome.kind) {
      case 'continue':
        this.answer(state, msg, entry, CODE_CONTINUE, [{ number: OPTION.Block1, value: encodeBlock(block.num, true, outcome.szx) }]);
        return false;
      case 'too-large':
        this.answer(state, msg, entry, CODE_TOO_LARGE, [{ number: OPTION.Size1, value: encodeUint(this.maxBlock1Body) }]);
        return false;
      case 'busy':
        this.answer(state, msg, entry, CODE_SERVICE_UNAVAILABLE);
        return false;
      case 'incomplete':
        this.answer(state, msg, entry, CODE_INCOMPLETE);
        return false;
      case 'bad':
        this.answer(state, msg, entry, CODE_BAD_REQUEST);
        return false;
      case 'complete':
        req.payload = outcome.body;
        res.block1Echo = encodeBlock(block.num, false, block.szx);
        return true;
    }
  }

  /** An answer of the layer itself, without the router: piggybacked on the ACK, or NON. */
  private answer(state: SessionState, msg: CoapMessage, entry: number, code: number, options = NO_OPTIONS): void {
    const con = msg.type === MessageType.CON;
    const datagram = encodeMessage(con ? MessageType.ACK : MessageType.NON, code, con ? msg.messageId : state.nextMessageId(), msg.token, options, undefined);
    this.dedup.setReply(entry, datagram);
    state.send(datagram);
  }

  private pendingResponseOf(messageId: number, state: SessionState): CoapResponse | undefined {
    for (const res of this.waiting) {
      if (res.request.messageId === messageId && res.request.session === state.transport) return res;
    }
    return undefined;
  }

  private awaitHandler(res: CoapResponse, now: number): void {
    this.waiting.push(res);
    this.waitingSince.push(now);
    if (this.sweepTimer === undefined) this.armSweep();
  }

  private armSweep(): void {
    this.sweepTimer = setTimeout(sweepWaiting, Math.max(1, this.piggybackMs / 2), this);
    this.sweepTimer.unref();
  }

  /** @internal The shared timer: empty ACKs for requests whose handlers are late. */
  sweep(): void {
    this.sweepTimer = undefined;
    const now = Date.now();
    const keep: CoapResponse[] = [];
    const since: number[] = [];
    for (let i = 0; i < this.waiting.length; i++) {
      const res = this.waiting[i]!;
      if (res.headersSent) continue;
      if (now - this.waitingSince[i]! >= this.piggybackMs) {
        res.acknowledgeNow();
        continue;
      }
      keep.push(res);
      since.push(this.waitingSince[i]!);
    }
    this.waiting = keep;
    this.waitingSince = since;
    if (keep.length > 0) this.armSweep();
  }
}

function sweepWaiting(endpoint: CoapEndpoint): void {
  endpoint.sweep();
}
