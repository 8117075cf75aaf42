/**
 * What a handler gets: the request (`CoapRequest`) and its response (`CoapResponse`). Both are
 * plain classes with their accessors on the prototype, so a request costs two objects and no
 * closure. The response decides by itself how its answer travels: piggybacked on the ACK while
 * the handler answers in time, else as a separate CON after an empty ACK (RFC 7252 5.2), NON to a
 * NON request; as Observe notifications once a relation stands (RFC 7641); block by block when
 * larger than the client's block size (RFC 7959).
 */
import { block2Slice, MAX_SZX } from './block.js';
import { NO_ENTRY, type DedupCache } from './dedup.js';
import { codeText, emptyMessage, encodeMessage, MessageType, sortOptions, type CoapMessage, type CoapOption } from './message.js';
import { sendConfirmable, type RetransmitParams } from './messaging.js';
import { ObserveRelation, type RelationOwner } from './observe.js';
import { CONTENT_FORMATS, decodeBlock, decodeUint, encodeBlock, encodeUint, findOption, OPTION, OPTION_NAMES, uintValue } from './options.js';
import type { SessionState } from './session-state.js';
import type { PeerIdentity } from './transport.js';

/** What a handler may know of the session under it: where it is, not how to write to it. */
export interface SessionAddress {
  readonly address: string;
  readonly port: number;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'FETCH' | 'PATCH' | 'iPATCH';
const METHODS: Array<Method | undefined> = [undefined, 'GET', 'POST', 'PUT', 'DELETE', 'FETCH', 'PATCH', 'iPATCH'];

export type OptionName = keyof typeof OPTION_NAMES | string;
export type OptionValue = string | number | Buffer;

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

function optionNumber(name: OptionName | number): number | undefined {
  return typeof name === 'number' ? name : OPTION_NAMES[name];
}

export class CoapRequest {
  /** `:name` segments of the matched route; a trailing `*` is captured as `rest`. */
  params: Record<string, string> = NO_PARAMS;
  /** The pattern of the route that matched (e.g. `/devices/:id`), or undefined for none. */
  route: string | undefined = undefined;
  /** The body: this message's payload, or the whole upload once its last Block1 block is in. */
  payload: Buffer;
  private pathCache: string[] | undefined = undefined;
  private queryCache: URLSearchParams | undefined = undefined;

  constructor(
    /** Who the DTLS session proved the peer to be. */
    readonly peer: PeerIdentity,
    /** The DTLS session the request came over (where its newest record came from). */
    readonly session: SessionAddress,
    private readonly message: CoapMessage,
    /** Observe option of the request (0 register, 1 deregister), undefined without one. */
    readonly observe: number | undefined,
  ) {
    this.payload = message.payload;
  }

  get identity(): string {
    return this.peer.identity;
  }
  get identityBytes(): Buffer {
    return this.peer.identityBytes;
  }
  get keyLabel(): string {
    return this.peer.keyLabel;
  }
  get cipherSuite(): string {
    return this.peer.cipherSuite;
  }
  get serial(): string {
    return this.peer.serial;
  }
  get identityParts(): Readonly<Record<string, string>> {
    return this.peer.identityParts;
  }
  /** GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH; the code as text ("0.08") for others. */
  get method(): string {
    return METHODS[this.message.code] ?? codeText(this.message.code);
  }
  get confirmable(): boolean {
    return this.message.type === MessageType.CON;
  }
  get messageId(): number {
    return this.message.messageId;
  }
  get token(): Buffer {
    return this.message.token;
  }
  /** All options, in wire order; values are views into the datagram (copy what you keep). */
  get options(): readonly CoapOption[] {
    return this.message.options;
  }
  /** The Uri-Path segments as UTF-8 (not percent-decoded: RFC 7252 6.5 carries them raw). */
  get path(): string[] {
    if (this.pathCache === undefined) this.pathCache = this.optionStrings(OPTION.UriPath);
    return this.pathCache;
  }
  get url(): string {
    return '/' + this.path.join('/');
  }
  /** The Uri-Query options, one option per pair. */
  get query(): URLSearchParams {
    if (this.queryCache === undefined) {
      const q = new URLSearchParams();
      for (const pair of this.optionStrings(OPTION.UriQuery)) {
        const eq = pair.indexOf('=');
        if (eq < 0) q.append(pair, '');
        else q.append(pair.slice(0, eq), pair.slice(eq + 1));
      }
      this.queryCache = q;
    }
    return this.queryCache;
  }
  get contentFormat(): number | undefined {
    return this.optionUint(OPTION.ContentFormat);
  }
  /** The first value of an option, by RFC name or number. */
  option(name: OptionName | number): Buffer | undefined {
    const n = optionNumber(name);
    return n === undefined ? undefined : findOption(this.message.options, n);
  }
  /** An option's value as an unsigned integer. */
  optionUint(name: OptionName | number): number | undefined {
    const v = this.option(name);
    return v === undefined ? undefined : decodeUint(v);
  }
  /**
   * The request as a message again, its whole body included, in memory of its own: what an
   * Observe relation keeps of its registration (a graceful restart runs it again, handover.ts).
   */
  encodeAgain(): Buffer {
    const m = this.message;
    return encodeMessage(m.type, m.code, m.messageId, m.token, m.options, this.payload.length > 0 ? this.payload : undefined);
  }

  optionStrings(name: OptionName | number): string[] {
    const n = optionNumber(name);
    const out: string[] = [];
    for (const o of this.message.options) if (o.number === n) out.push(o.value.toString('utf8'));
    return out;
  }
}

/** What a response needs from the endpoint that made it. */
export interface ExchangeContext {
  readonly dedup: DedupCache;
  readonly retransmit: RetransmitParams;
  now(): number;
  /** Called once per response, when its first message leaves (the metrics count there). */
  responded(req: CoapRequest, res: CoapResponse): void;
  /** A handler failure or an undeliverable message. */
  error(message: string, error?: unknown): void;
}

const CODE_BYTE: Record<string, number> = {};
for (let c = 0; c < 256; c++) CODE_BYTE[codeText(c)] = c;

type CloseListener = (reason: string) => void;

export class CoapResponse implements RelationOwner {
  /** The response code as "c.dd"; default 2.05 Content. */
  code = '2.05';
  /** True when the client asked to observe (GET, Observe: 0) and one more relation fits:
   * write() then starts a relation; otherwise write() is the same as end(). */
  observing = false;
  /** RFC 7959 2.4: the block of the body this request asked for, and the block size. */
  block2Num = 0;
  block2Szx = MAX_SZX;
  /** The request carried Size2 (RFC 7959 4): the response tells the body's size even when it fits one message. */
  wantsSize2 = false;
  /** Set for the last block of an upload: echoed as the final response's Block1 (RFC 7959 2.3). */
  block1Echo: Buffer | undefined = undefined;
  private readonly opts: CoapOption[] = [];
  private acked = false;
  private started = false;
  private finished = false;
  private relation: ObserveRelation | undefined = undefined;
  private closeListeners: CloseListener[] | undefined = undefined;

  constructor(
    private readonly ctx: ExchangeContext,
    private readonly state: SessionState,
    readonly request: CoapRequest,
    private readonly entry: number,
  ) {}

  /**
   * Takes what the request asks of the response's shape (RFC 7959 2.4, 4): the Block2 it
   * wants (a smaller size only, never a larger one than ours) and Size2. False for a Block2
   * option that does not parse.
   */
  takeBlockOptions(msg: CoapMessage): boolean {
    const b2 = findOption(msg.options, OPTION.Block2);
    if (b2 !== undefined) {
      const block = decodeBlock(b2);
      if (block === undefined) return false;
      this.block2Num = block.num;
      if (block.szx < this.block2Szx) this.block2Szx = block.szx;
    }
    if (findOption(msg.options, OPTION.Size2) !== undefined) this.wantsSize2 = true;
    return true;
  }

  /** True once the first message of the response has been sent. */
  get headersSent(): boolean {
    return this.started;
  }
  /** True once end() ran, or the Observe relation ended. */
  get ended(): boolean {
    return this.finished;
  }

  /**
   * Sets an option for the response, replacing any earlier value of it; an array repeats it.
   * Strings are UTF-8 (Content-Format and Accept also take a media type: 'application/json'),
   * numbers are uints, Buffers go as they are.
   */
  setOption(name: OptionName | number, value: OptionValue | OptionValue[]): this {
    const n = optionNumber(name);
    if (n === undefined) throw new Error(`unknown CoAP option: ${String(name)}`);
    for (let i = this.opts.length - 1; i >= 0; i--) if (this.opts[i]!.number === n) this.opts.splice(i, 1);
    if (Array.isArray(value)) for (const v of value) this.opts.push({ number: n, value: optionBytes(n, v) });
    else this.opts.push({ number: n, value: optionBytes(n, value) });
    return this;
  }

  /** Sends the response (or, while observing, the last notification: the relation ends). */
  end(payload?: string | Buffer): void {
    if (this.finished) return;
    const body = payload === undefined ? undefined : typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    if (this.relation !== undefined) {
      // Without Observe: the client learns that the relation is over (RFC 7641 3.2).
      this.finished = true;
      this.notifyOnce(this.relation, body, false);
      return;
    }
    this.finished = true;
    this.first(body, false);
  }

  /**
   * Observe: the first write() is the registration's response, each further one a notification.
   * Without a relation (not observing, or it ended) it is end(), once.
   */
  write(payload: string | Buffer): void {
    if (this.finished) return;
    const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    if (this.relation !== undefined) {
      this.notifyOnce(this.relation, body, true);
      return;
    }
    if (!this.observing || this.started) {
      this.end(body);
      return;
    }
    this.first(body, true);
  }

  /** Called once when the Observe relation ends ('deregistered', 're-registered', 'reset', 'timeout', 'session-closed', 'ended', 'refused'). */
  onClose(listener: CloseListener): this {
    if (this.finished && this.relation === undefined && this.started) {
      listener('ended');
      return this;
    }
    (this.closeListeners ??= []).push(listener);
    return this;
  }

  relationEnded(reason: string): void {
    this.relation = undefined;
    this.finished = true;
    const listeners = this.closeListeners;
    this.closeListeners = undefined;
    if (listeners !== undefined) for (const l of listeners) l(reason);
  }

  /**
   * A relation handed over by another process (handover.ts), owned by this response: the
   * registration's answer went long ago, so the handler's first write() is a notification.
   */
  resumeRelation(relation: ObserveRelation): void {
    this.started = true;
    this.observing = true;
    this.relation = relation;
  }

  /** The handler did not answer within the piggyback delay: empty ACK now, the answer comes as CON. */
  acknowledgeNow(): void {
    if (this.started || this.acked || !this.request.confirmable) return;
    this.acked = true;
    const ack = emptyMessage(MessageType.ACK, this.request.messageId);
    if (this.entry !== NO_ENTRY) this.ctx.dedup.setReply(this.entry, ack);
    this.state.send(ack);
  }

  private codeByte(): number {
    const c = CODE_BYTE[this.code];
    if (c === undefined || c < 0x40) {
      this.ctx.error(`coap: response code ${this.code} is not a response code; 5.00 sent`);
      return 0xa0;
    }
    return c;
  }

  /** The options of this message: the handler's, plus those the layer adds; sorted. */
  private optionsWith(extra: CoapOption | undefined): CoapOption[] {
    if (extra === undefined && this.block1Echo === undefined && this.opts.length < 2) return this.opts;
    const out = this.opts.slice();
    if (extra !== undefined) out.push(extra);
    if (this.block1Echo !== undefined && findOption(out, OPTION.Block1) === undefined) {
      out.push({ number: OPTION.Block1, value: this.block1Echo });
    }
    sortOptions(out);
    return out;
  }

  /**
   * The options and payload of one message: the body's block `num` with Block2 and Size2 when it
   * is larger than a block or a later block was asked for, Size2 alone when the request asked
   * (RFC 7959 4); undefined when `num` lies past the body's end.
   */
  private shaped(opts: CoapOption[], body: Buffer | undefined, num: number): { opts: CoapOption[]; body: Buffer | undefined } | undefined {
    if (body === undefined || (body.length <= 16 << this.block2Szx && num === 0 && !this.wantsSize2)) return { opts, body };
    const out = opts === this.opts ? opts.slice() : opts;
    let part = body;
    if (body.length > 16 << this.block2Szx || num > 0) {
      const slice = block2Slice(body, num, this.block2Szx);
      if (slice === undefined) return undefined;
      out.push({ number: OPTION.Block2, value: encodeBlock(num, slice.more, this.block2Szx) });
      part = slice.part;
    }
    out.push({ number: OPTION.Size2, value: encodeUint(body.length) });
    sortOptions(out);
    return { opts: out, body: part };
  }

  /** The response's first message. */
  private first(body: Buffer | undefined, observe: boolean): void {
    this.started = true;
    let code = this.codeByte();
    const req = this.request;
    let extra: CoapOption | undefined;
    if (observe && code >> 5 === 2 && !this.state.closed) {
      const key = req.token.toString('hex');
      const registration = req.encodeAgain();
      const token = registration.subarray(4, 4 + req.token.length);
      const relation = new ObserveRelation(this.state, key, token, req.confirmable, this, this.ctx.retransmit, this.ctx.now(), registration);
      this.state.relations.set(key, relation);
      this.relation = relation;
      extra = relation.observeOption();
    } else if (observe) {
      this.finished = true;
    }
    const out = this.shaped(this.optionsWith(extra), body, this.block2Num);
    if (out === undefined) {
      code = 0x82; // 4.02 Bad Option: no such block
      body = undefined;
    } else body = out.body;
    const opts = out === undefined ? [] : out.opts;
    this.transmit(code, opts, body);
    this.ctx.responded(req, this);
    if (this.finished && this.relation === undefined) this.relationEnded(observe ? 'refused' : 'ended');
  }

  private transmit(code: number, opts: CoapOption[], body: Buffer | undefined): void {
    const req = this.request;
    if (!req.confirmable) {
      const mid = this.state.nextMessageId();
      const datagram = encodeMessage(MessageType.NON, code, mid, req.token, opts, body);
      if (this.entry !== NO_ENTRY) this.ctx.dedup.setReply(this.entry, datagram);
      this.state.send(datagram);
    } else if (!this.acked) {
      const datagram = encodeMessage(MessageType.ACK, code, req.messageId, req.token, opts, body);
      if (this.entry !== NO_ENTRY) this.ctx.dedup.setReply(this.entry, datagram);
      this.state.send(datagram);
    } else {
      const mid = this.state.nextMessageId();
      const datagram = encodeMessage(MessageType.CON, code, mid, req.token, opts, body);
      sendConfirmable(this.state, mid, datagram, this.ctx.retransmit);
    }
  }

  private notifyOnce(relation: ObserveRelation, body: Buffer | undefined, observe: boolean): void {
    const code = this.codeByte();
    // A notification that is not 2.xx ends the relation (RFC 7641 3.2): sent without Observe.
    if (code >> 5 !== 2) observe = false;
    // A notification larger than one block goes as its first block; the client asks for the rest.
    const { opts, body: part } = this.shaped(this.optionsWith(observe ? relation.observeOption() : undefined), body, 0)!;
    body = part;
    if (observe) {
      relation.notify(code, opts, body, this.ctx.now());
      return;
    }
    relation.close('ended');
    relation.sendLast(code, opts, body, this.ctx.now());
  }
}

function optionBytes(n: number, v: OptionValue): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'number') return uintValue(v);
  if (n === OPTION.ContentFormat || n === OPTION.Accept) {
    const f = CONTENT_FORMATS[v];
    if (f !== undefined) return uintValue(f);
  }
  return Buffer.from(v, 'utf8');
}

