/**
 * The server side of one DTLS 1.2 PSK handshake, from the cookie-verified ClientHello to the
 * server's Finished (RFC 6347 section 4.2.4, RFC 5246 section 7.3, RFC 4279, RFC 5489):
 *
 *   ClientHello (with cookie)  -->
 *                              <--  ServerHello, [ServerKeyExchange], ServerHelloDone   (flight 4)
 *   ClientKeyExchange, ChangeCipherSpec, Finished  -->                                   (flight 5)
 *                              <--  ChangeCipherSpec, Finished                           (flight 6)
 *
 * The PSK is looked up after ClientKeyExchange names the identity. That lookup is
 * asynchronous (an HSM call): while it runs, records of this peer are queued (bounded) and
 * every other peer is served. During a key rotation the lookup returns several candidate
 * keys; the first whose keys open the client's Finished record wins.
 *
 * With a ResumptionPlan that resumes a session (server-resumption.ts), the handshake is the
 * abbreviated one of RFC 5246 7.3 / RFC 5077 3.1, and the server's Finished comes first:
 *
 *   ClientHello (with cookie, session ID or ticket)  -->
 *                              <--  ServerHello, [NewSessionTicket], ChangeCipherSpec, Finished
 *   ChangeCipherSpec, Finished  -->
 *
 * Its keys come from the session's master secret: no key lookup, so no HSM call. A full
 * handshake whose client offered the SessionTicket extension ends with NewSessionTicket before
 * the server's ChangeCipherSpec (RFC 5077 3.3); both Finished hashes cover it.
 */
import { timingSafeEqual } from 'node:crypto';
import type { RecordProtection } from './ciphers/types.js';
import { AlertDescription, ContentType, DTLS_1_2, HandshakeType } from './constants.js';
import { generateEphemeral, type EcdheGroup, type Ephemeral } from './ecdhe.js';
import { type RetransmitPolicy, RetransmitTimer, type FlightItem } from './flight.js';
import { parseHandshakeFragments } from './handshake/header.js';
import type { ClientHello } from './handshake/client-hello.js';
import { parseClientKeyExchange } from './handshake/client-key-exchange.js';
import { encodeFinished, parseFinished } from './handshake/finished.js';
import { encodeNewSessionTicket } from './handshake/new-session-ticket.js';
import { encodeServerHello } from './handshake/server-hello.js';
import { encodeServerHelloDone } from './handshake/server-hello-done.js';
import {
  encodeServerKeyExchangeEcdhePsk,
  encodeServerKeyExchangePsk,
} from './handshake/server-key-exchange.js';
import type { Negotiated } from './negotiation.js';
import { ecdhePskPremaster, pskPremaster } from './premaster.js';
import {
  computeExtendedMasterSecret,
  computeMasterSecret,
  computeVerifyData,
  deriveKeyBlock,
} from './prf.js';
import { publicRandomBytes } from './public-random.js';
import type { HandshakeWork } from './handshake-work.js';
import { HandshakeReassembler, type HandshakeMessage } from './reassembler.js';
import type { DTLSRecord } from './record.js';
import type { OpenedRecord } from './record-layer.js';
import type { PskKey, PskLookup } from './psk.js';
import type { HandshakeFailure } from './reasons.js';
import { NO_RESUMPTION, serverHelloExtensions, type ResumedKind, type ResumptionPlan } from './server-resumption.js';
import type { ResumableSession } from './session-state.js';
import { Transcript } from './transcript.js';

/** What the handshake needs from the connection that carries it. */
export interface HandshakeHost {
  transmit(items: readonly FlightItem[]): void;
  /** Keys for epoch 1 are known: reading them starts now; writing them starts with our CCS. */
  installEpoch1(read: RecordProtection, write: RecordProtection, expansion: number): void;
  /** Re-feeds records that were queued while the key lookup ran. */
  replay(records: DTLSRecord[]): void;
  fail(alert: number, reason: HandshakeFailure, detail?: string): void;
  complete(result: HandshakeResult): void;
}

export interface HandshakeResult {
  readonly identity: Buffer;
  /** The opaque tag the PSK lookup gave the key that verified. */
  readonly pskTag: string;
  readonly suiteName: string;
  readonly finalFlight: readonly FlightItem[];
  readonly masterSecret: Buffer;
  readonly clientRandom: Buffer;
  /** With the suite and the flags below: what re-derives the keys (graceful restart, session-export.ts). */
  readonly serverRandom: Buffer;
  readonly cipherSuite: number;
  readonly extendedMasterSecret: boolean;
  readonly encryptThenMac: boolean;
  readonly durationMs: number;
  /** Set when this was an abbreviated handshake: how the session was found. */
  readonly resumed?: ResumedKind;
  /** ServerHello's session ID (empty when none was issued). */
  readonly sessionId: Buffer;
  /** The session to keep for resumption by ID, when the plan says so and it has EMS. */
  readonly resumable?: ResumableSession;
}

/** Key lookups in flight across all handshakes: the HSM queue the server keeps bounded. */
export interface KeyLookupQueue {
  pending: number;
  readonly max: number;
  readonly timeoutMs: number;
}

export interface HandshakeOptions {
  readonly pskLookup: PskLookup;
  readonly lookups: KeyLookupQueue;
  readonly identityHint: Buffer;
  readonly maxIdentityLength: number;
  readonly retransmit: RetransmitPolicy;
  /** The whole handshake ends this long after the cookie-verified ClientHello. */
  readonly handshakeTimeoutMs: number;
  readonly maxQueuedRecords: number;
  readonly maxReassemblyBytes: number;
  /** Where the work after the key lookup waits for its slice of the event loop. */
  readonly work: HandshakeWork;
}

/**
 * Transmissions of the client's flight 5 whose Finished authenticates under no candidate key,
 * before the handshake is failed. Counted once per transmission (the first, or a repeat that
 * carries the same ClientKeyExchange again), never per record or datagram: forged records
 * alone cost an honest handshake at most one of them.
 */
const UNREADABLE_FINISHED_LIMIT = 2;

type State = 'wait_client_key_exchange' | 'resolving' | 'wait_finished' | 'wait_resumed_finished' | 'done' | 'failed';

/** Keys derived for one candidate PSK, kept until the client's Finished picks one. */
interface CandidateKeys {
  readonly tag: string;
  readonly masterSecret: Buffer;
  readonly clientWrite: RecordProtection;
  readonly serverWrite: RecordProtection;
}

export class ServerHandshake {
  private state: State = 'wait_client_key_exchange';
  private readonly transcript = new Transcript();
  private readonly reassembler: HandshakeReassembler;
  private readonly timer: RetransmitTimer;
  private readonly serverRandom = publicRandomBytes(32);
  private readonly startedAt = Date.now();
  private nextSendSeq: number;
  private flight4: FlightItem[] = [];
  private ephemeral: Ephemeral | undefined;
  private identity: Buffer | undefined;
  private candidates: CandidateKeys[] = [];
  private chosen: CandidateKeys | undefined;
  private readonly queued: DTLSRecord[] = [];
  private unreadableFinished = 0;
  /** A (re)transmission of flight 5 arrived whose Finished has not been counted yet. */
  private flight5Armed = false;
  private clientKeyExchange: { readonly messageSeq: number; readonly body: Buffer } | undefined;
  private readonly plan: ResumptionPlan;

  constructor(
    private readonly host: HandshakeHost,
    private readonly options: HandshakeOptions,
    readonly clientHello: ClientHello,
    clientHelloSeq: number,
    clientHelloBody: Buffer,
    private readonly negotiated: Negotiated,
    /** Session ID, ticket and abbreviated handshake (server-resumption.ts); none by default. */
    plan: ResumptionPlan = NO_RESUMPTION,
  ) {
    // The stateless HelloVerifyRequest took message_seq 0 in the client's count; our next
    // message carries the same message_seq as the ClientHello it answers (RFC 6347 4.2.2).
    this.nextSendSeq = clientHelloSeq;
    this.plan = plan;
    this.reassembler = new HandshakeReassembler(clientHelloSeq + 1, options.maxReassemblyBytes);
    this.transcript.add(HandshakeType.client_hello, clientHelloSeq, clientHelloBody);
    this.timer = new RetransmitTimer(
      options.retransmit,
      () => this.host.transmit(this.flight4),
      (atDeadline) => this.abort(AlertDescription.handshake_failure, atDeadline ? 'handshake_timeout' : 'peer_stopped_answering'),
      // The handshake timeout bounds the retransmissions too: one deadline, one reason.
      this.startedAt + options.handshakeTimeoutMs,
    );
  }

  /** The PSK identity once ClientKeyExchange named it (for logs of failed handshakes). */
  get peerIdentity(): Buffer | undefined {
    return this.identity;
  }

  get suiteName(): string {
    return this.negotiated.suite.name;
  }

  /** The session ID of the cached session this abbreviated handshake resumes; undefined for a full handshake or a ticket. */
  get resumedSessionId(): Buffer | undefined {
    return this.plan.resumes?.kind === 'id' ? this.plan.sessionId : undefined;
  }

  get isBusy(): boolean {
    return this.state === 'resolving';
  }

  get finished(): boolean {
    return this.state === 'done' || this.state === 'failed';
  }

  /** Sends flight 4. */
  start(): void {
    const n = this.negotiated;
    const serverHello = encodeServerHello({
      serverVersion: DTLS_1_2,
      random: this.serverRandom,
      sessionId: this.plan.sessionId,
      cipherSuite: n.suite.id,
      compressionMethod: 0,
      extensions: serverHelloExtensions(n, this.plan),
    });
    this.flight4.push(this.message(HandshakeType.server_hello, serverHello));
    if (this.plan.resumes) return this.startAbbreviated(this.plan.resumes.state);
    if (n.suite.keyExchange === 'ecdhe_psk') {
      this.ephemeral = generateEphemeral(n.group as EcdheGroup);
      const ske = encodeServerKeyExchangeEcdhePsk(this.options.identityHint, n.group!, this.ephemeral.publicKey);
      this.flight4.push(this.message(HandshakeType.server_key_exchange, ske));
    } else if (this.options.identityHint.length > 0) {
      // RFC 4279 section 2: ServerKeyExchange is omitted when there is no hint to send.
      const ske = encodeServerKeyExchangePsk(this.options.identityHint);
      this.flight4.push(this.message(HandshakeType.server_key_exchange, ske));
    }
    this.flight4.push(this.message(HandshakeType.server_hello_done, encodeServerHelloDone()));
    this.host.transmit(this.flight4);
    this.timer.start(true);
  }

  /** The client repeated its ClientHello (flight 3): our flight 4 was lost, send it again. */
  onFlight3Repeated(): void {
    if (this.state === 'wait_client_key_exchange' || this.state === 'wait_resumed_finished') this.host.transmit(this.flight4);
  }

  /**
   * The rest of the abbreviated handshake's server flight: keys from the session's master
   * secret, [NewSessionTicket], ChangeCipherSpec, Finished. The flight is retransmitted until
   * the client's Finished arrives.
   */
  private startAbbreviated(state: ResumableSession): void {
    const n = this.negotiated;
    this.identity = state.identity;
    if (this.plan.issueTicket) this.flight4.push(this.message(HandshakeType.new_session_ticket, encodeNewSessionTicket(this.plan.issueTicket(state))));
    const chosen = this.candidateKeys(state.pskTag, state.masterSecret);
    this.chosen = chosen;
    this.host.installEpoch1(chosen.clientWrite, chosen.serverWrite, n.suite.maxExpansion);
    const serverVerify = computeVerifyData(state.masterSecret, 'server finished', this.transcript.digest());
    this.flight4.push(
      { kind: 'change_cipher_spec', epoch: 0 },
      this.message(HandshakeType.finished, encodeFinished({ verifyData: serverVerify }), 1),
    );
    this.state = 'wait_resumed_finished';
    this.host.transmit(this.flight4);
    this.timer.start(true);
  }

  /** Records that arrive while the key lookup runs wait here, a bounded number of them. */
  enqueue(record: DTLSRecord): void {
    if (this.queued.length < this.options.maxQueuedRecords) this.queued.push(record);
  }

  onHandshakeFragment(plaintext: Buffer): void {
    const fragments = parseHandshakeFragments(plaintext);
    if (!fragments) return this.abort(AlertDescription.decode_error, 'malformed_handshake', 'handshake fragment');
    let sawOld = false;
    for (const f of fragments) {
      const r = this.reassembler.add(f);
      if (r === 'old') {
        sawOld = true;
        if (this.repeatsClientKeyExchange(f)) this.flight5Armed = true;
      } else if (r === 'invalid') return this.abort(AlertDescription.illegal_parameter, 'inconsistent_fragments');
      // 'over-limit' fragments are dropped; the client retransmits what matters.
    }
    if (sawOld) this.onFlight3Repeated();
    for (let m = this.reassembler.next(); m && !this.finished; m = this.reassembler.next()) {
      this.onMessage(m);
      if (this.state === 'resolving') return; // the rest waits for the key lookup
    }
  }

  /**
   * An epoch-1 record before keys are installed: during a rotation, the client's Finished
   * is opened with each candidate's keys in turn (`open`: the connection's record format,
   * plain or tls12_cid). Returns the opened record, or undefined.
   */
  openEpoch1(record: DTLSRecord, open: (protection: RecordProtection) => OpenedRecord | undefined): OpenedRecord | undefined {
    if (this.state === 'wait_client_key_exchange') {
      // Reordered ahead of ClientKeyExchange: keep it for when the keys exist.
      this.enqueue(record);
      return undefined;
    }
    // A tls12_cid record (RFC 9146) carries its real type inside: checked once opened.
    if (this.state !== 'wait_finished' || (record.type !== ContentType.handshake && record.type !== ContentType.tls12_cid)) return undefined;
    for (const c of this.candidates) {
      const opened = open(c.clientWrite);
      const plain = opened?.type === ContentType.handshake ? opened : undefined;
      if (plain) {
        this.chosen = c;
        this.host.installEpoch1(c.clientWrite, c.serverWrite, this.negotiated.suite.maxExpansion);
        return plain;
      }
    }
    // RFC 6347 4.1.2.7: a record that does not authenticate is dropped. It counts against the
    // handshake only as the first unreadable record of a transmission of flight 5 (armed by
    // the ClientKeyExchange, first or repeated byte for byte): a client with the wrong key
    // fails each of its retransmissions and gets an answer after the second, while forged
    // records, however many in a datagram, count at most once per copy of the ClientKeyExchange
    // that arrived. (A forger who can also repeat that message, e.g. an on-path attacker, or
    // anyone for a plain-PSK one naming a known serial, can still end the handshake.)
    if (this.flight5Armed) {
      this.flight5Armed = false;
      if (++this.unreadableFinished >= UNREADABLE_FINISHED_LIMIT) {
        this.abort(AlertDescription.bad_record_mac, 'finished_unreadable', 'no candidate key opens the Finished record (wrong PSK?)');
      }
    }
    return undefined;
  }

  /** A fragment of the ClientKeyExchange we already took, with the same bytes: flight 5 again. */
  private repeatsClientKeyExchange(f: { msgType: number; messageSeq: number; length: number; fragmentOffset: number; body: Buffer }): boolean {
    const cke = this.clientKeyExchange;
    if (!cke || f.msgType !== HandshakeType.client_key_exchange || f.messageSeq !== cke.messageSeq || f.length !== cke.body.length) return false;
    return f.body.equals(cke.body.subarray(f.fragmentOffset, f.fragmentOffset + f.body.length));
  }

  dispose(): void {
    this.timer.stop();
    this.state = this.state === 'done' ? 'done' : 'failed';
    for (const c of this.candidates) if (c !== this.chosen) c.masterSecret.fill(0);
    this.candidates = [];
    this.queued.length = 0;
  }

  private onMessage(m: HandshakeMessage): void {
    if (this.state === 'wait_client_key_exchange' && m.msgType === HandshakeType.client_key_exchange) {
      this.timer.stop(); // flight 5 has begun: flight 4 arrived
      this.onClientKeyExchange(m);
    } else if ((this.state === 'wait_finished' || this.state === 'wait_resumed_finished') && m.msgType === HandshakeType.finished) {
      this.onFinished(m);
    } else {
      this.abort(AlertDescription.unexpected_message, 'unexpected_message', `handshake message ${m.msgType}`);
    }
  }

  private onClientKeyExchange(m: HandshakeMessage): void {
    const cke = parseClientKeyExchange(m.body, this.negotiated.suite.keyExchange);
    if (!cke) return this.abort(AlertDescription.decode_error, 'malformed_handshake', 'ClientKeyExchange');
    if (cke.identity.length === 0 || cke.identity.length > this.options.maxIdentityLength) {
      return this.abort(AlertDescription.unknown_psk_identity, 'identity_length');
    }
    let z: Buffer | undefined;
    if (this.ephemeral) {
      z = 'publicKey' in cke && cke.publicKey ? this.ephemeral.computeSecret(cke.publicKey) : undefined;
      if (!z) return this.abort(AlertDescription.illegal_parameter, 'invalid_ecdhe_key');
    }
    const lookups = this.options.lookups;
    if (lookups.pending >= lookups.max) {
      // Refuse at once rather than queue without bound: the client learns now, and the
      // established sessions never wait behind a backlog of derivations.
      return this.abort(AlertDescription.internal_error, 'key_lookup_queue_full');
    }
    this.identity = Buffer.from(cke.identity);
    this.clientKeyExchange = { messageSeq: m.messageSeq, body: Buffer.from(m.body) };
    this.flight5Armed = true;
    this.transcript.add(m.msgType, m.messageSeq, m.body);
    const sessionHash = this.transcript.digest();
    this.state = 'resolving';
    lookups.pending++;
    this.lookUpKeys(sessionHash, z);
  }

  /**
   * The asynchronous HSM call, bounded in time. A lookup that answers after its handshake
   * gave up has its keys wiped at once; its queue slot was released at the timeout.
   */
  private lookUpKeys(sessionHash: Buffer, z: Buffer | undefined): void {
    const lookups = this.options.lookups;
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      lookups.pending--;
      return true;
    };
    const timer = setTimeout(() => {
      if (settle()) this.abort(AlertDescription.internal_error, 'key_lookup_timeout', `after ${lookups.timeoutMs} ms`);
    }, lookups.timeoutMs);
    timer.unref();
    // A resolver that throws instead of rejecting still fails only this handshake.
    new Promise<Awaited<ReturnType<PskLookup>>>((resolve) => resolve(this.options.pskLookup(this.identity!))).then(
      (found) => {
        const candidates = 'refused' in found ? [] : found;
        if (!settle()) return wipe(candidates);
        if ('refused' in found) return this.abort(AlertDescription.unknown_psk_identity, found.refused);
        this.options.work.defer(() => this.onKeysResolved(candidates, z, sessionHash));
      },
      (err: unknown) => {
        if (settle()) this.abort(AlertDescription.internal_error, 'key_lookup_failed', errorText(err));
      },
    );
  }

  /** The epoch-1 protections a master secret gives (RFC 5246 6.3); the key block is wiped once they hold their keys. */
  private candidateKeys(tag: string, masterSecret: Buffer): CandidateKeys {
    const n = this.negotiated;
    const keys = deriveKeyBlock(masterSecret, this.clientHello.random, this.serverRandom, n.suite);
    const opts = { encryptThenMac: n.encryptThenMac };
    const result: CandidateKeys = {
      tag,
      masterSecret,
      clientWrite: n.suite.createProtection(keys.client, opts),
      serverWrite: n.suite.createProtection(keys.server, opts),
    };
    wipeKeyBlock(keys);
    return result;
  }

  private onKeysResolved(candidates: readonly PskKey[], z: Buffer | undefined, sessionHash: Buffer): void {
    if (this.finished) return wipe(candidates); // the connection went away while the HSM worked
    if (candidates.length === 0) return this.abort(AlertDescription.unknown_psk_identity, 'unknown_psk_identity');
    const n = this.negotiated;
    this.candidates = candidates.map((c) => {
      const premaster = z ? ecdhePskPremaster(z, c.psk) : pskPremaster(c.psk);
      const masterSecret = n.extendedMasterSecret
        ? computeExtendedMasterSecret(premaster, sessionHash)
        : computeMasterSecret(premaster, this.clientHello.random, this.serverRandom);
      premaster.fill(0);
      return this.candidateKeys(c.tag, masterSecret);
    });
    z?.fill(0);
    wipe(candidates); // the lookup hands out copies: these bytes are ours to erase
    this.state = 'wait_finished';
    const queued = this.queued.splice(0);
    this.host.replay(queued);
    // Records queued during the lookup (CCS, Finished) may not have arrived yet; if flight 5
    // is lost after this point the client retransmits it and we proceed then.
    for (let m = this.reassembler.next(); m && !this.finished; m = this.reassembler.next()) this.onMessage(m);
  }

  private onFinished(m: HandshakeMessage): void {
    const chosen = this.chosen;
    if (!chosen) return this.abort(AlertDescription.unexpected_message, 'unexpected_message', 'Finished before ChangeCipherSpec');
    const fin = parseFinished(m.body);
    if (!fin) return this.abort(AlertDescription.decode_error, 'malformed_handshake', 'Finished');
    const expected = computeVerifyData(chosen.masterSecret, 'client finished', this.transcript.digest());
    // Constant time: verify_data is a MAC, and a timing oracle on it would help a forger.
    if (!timingSafeEqual(expected, fin.verifyData)) {
      return this.abort(AlertDescription.decrypt_error, 'finished_mismatch');
    }
    const resumed = this.state === 'wait_resumed_finished' ? this.plan.resumes!.kind : undefined;
    const finalFlight: FlightItem[] = [];
    // What a ticket seals and the session cache keeps: one state for both.
    const resumable = resumed ? undefined : this.resumableState(chosen);
    if (!resumed) {
      this.transcript.add(m.msgType, m.messageSeq, m.body);
      if (resumable && this.plan.issueTicket) finalFlight.push(this.message(HandshakeType.new_session_ticket, encodeNewSessionTicket(this.plan.issueTicket(resumable))));
      const serverVerify = computeVerifyData(chosen.masterSecret, 'server finished', this.transcript.digest());
      finalFlight.push(
        { kind: 'change_cipher_spec', epoch: 0 },
        { kind: 'handshake', epoch: 1, msgType: HandshakeType.finished, messageSeq: this.nextSendSeq++, body: encodeFinished({ verifyData: serverVerify }) },
      );
    }
    // Abbreviated: our flight went first, the client's Finished ends it; nothing to resend.
    this.state = 'done';
    this.timer.stop();
    this.host.transmit(finalFlight);
    this.host.complete({
      identity: this.identity!,
      pskTag: chosen.tag,
      suiteName: this.negotiated.suite.name,
      finalFlight,
      masterSecret: chosen.masterSecret,
      clientRandom: this.clientHello.random,
      serverRandom: this.serverRandom,
      cipherSuite: this.negotiated.suite.id,
      extendedMasterSecret: this.negotiated.extendedMasterSecret,
      encryptThenMac: this.negotiated.encryptThenMac,
      durationMs: Date.now() - this.startedAt,
      resumed,
      sessionId: this.plan.sessionId,
      resumable: this.plan.cache ? resumable : undefined,
    });
    this.dispose();
  }

  /** RFC 7627 5.3 and our policy: only a session with extended master secret is resumable. */
  private resumableState(chosen: CandidateKeys): ResumableSession | undefined {
    const n = this.negotiated;
    if (!n.extendedMasterSecret) return undefined;
    return {
      version: DTLS_1_2,
      cipherSuite: n.suite.id,
      masterSecret: chosen.masterSecret,
      identity: this.identity!,
      pskTag: chosen.tag,
      extendedMasterSecret: true,
      encryptThenMac: n.encryptThenMac,
      issuedAt: Date.now(),
    };
  }

  private message(msgType: number, body: Buffer, epoch = 0): FlightItem {
    const messageSeq = this.nextSendSeq++;
    this.transcript.add(msgType, messageSeq, body);
    return { kind: 'handshake', epoch, msgType, messageSeq, body };
  }

  private abort(alert: number, reason: HandshakeFailure, detail?: string): void {
    if (this.finished) return;
    this.dispose();
    this.state = 'failed';
    this.host.fail(alert, reason, detail);
  }
}

function wipeKeyBlock(keys: ReturnType<typeof deriveKeyBlock>): void {
  for (const k of [keys.client, keys.server]) {
    k.macKey.fill(0);
    k.encKey.fill(0);
    k.fixedIv.fill(0);
  }
}

function wipe(candidates: readonly PskKey[]): void {
  for (const c of candidates) c.psk.fill(0);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
