/**
 * One peer after its cookie verified: the handshake while it runs, then the established
 * session. Its address and port are those of the cookie exchange, and with a Connection ID
 * (RFC 9146) they follow the peer: `PeerAddressTracker` decides when a record from elsewhere
 * moves the session (section 6), and what may be sent to an address not yet proven. The record
 * layer (epochs, windows, protection, CID framing) is `RecordLayer`; this file is the policy
 * over it once the handshake is done: which alerts end the session, when the final flight is
 * sent again, and that renegotiation is refused.
 */
import {
  AlertDescription,
  AlertLevel,
  ContentType,
  HANDSHAKE_HEADER_LENGTH,
  HandshakeType,
  RECORD_HEADER_LENGTH,
} from './constants.js';
import type { FlightItem } from './flight.js';
import { fragmentHandshake, parseHandshakeFragments } from './handshake/header.js';
import { encodeAlert, parseAlert } from './alert.js';
import type { DTLSRecord } from './record.js';
import { MAX_PLAINTEXT_LENGTH, RecordLayer, type OpenedRecord, type RecordLayerSnapshot } from './record-layer.js';
import type { CidUse } from './cid-negotiation.js';
import { PeerAddressTracker, type PeerAddress } from './peer-address.js';
import type { RecordProtection } from './ciphers/types.js';
import type { HandshakeHost, HandshakeResult, ServerHandshake } from './server-handshake.js';
import type { HandshakeFailure } from './reasons.js';
import type { DtlsSession, PeerDescription } from './session.js';

export interface ConnectionEvents {
  /** Writes one datagram to the peer, at its current address, by `via` when set (PeerAddress.via). */
  sendDatagram(datagram: Buffer, address: string, port: number, via: number | undefined): void;
  onEstablished(conn: Connection, result: HandshakeResult): void;
  onData(conn: Connection, data: Buffer): void;
  /**
   * `failure` is set when the handshake never completed, with why. `fatal`: a fatal alert was
   * sent or received on this connection (RFC 5246 7.2.2: its session is not to be resumed).
   */
  onClosed(conn: Connection, reason: string, failure: HandshakeFailure | undefined, fatal: boolean): void;
  /** A record the policy refused (renegotiation), for the drop counters. */
  onRefused?(conn: Connection, what: 'renegotiation_refused'): void;
  /**
   * RFC 9146 section 6, for a session with a CID: 'moved' when an authenticated, newer record
   * from `from` moved the session there (`conn.address`/`port` are already the new ones);
   * 'kept' when an authenticated record came from elsewhere but was not newer, so it moved nothing.
   */
  onPeerAddress?(conn: Connection, verdict: 'moved' | 'kept', from: PeerAddress, previous: PeerAddress): void;
  /** A datagram held back because the session's new address has not proven itself yet. */
  onUnprovenSendHeld?(conn: Connection): void;
}

/** IP and UDP headers: the MTU counts them, the datagram payload does not. IPv4 20 + UDP 8 (RFC 791, RFC 768); IPv6 40 + UDP 8 (RFC 8200). */
const IPV4_UDP_OVERHEAD = 28;
const IPV6_UDP_OVERHEAD = 48;

const CCS_BODY = Buffer.from([1]);
const EMPTY = Buffer.alloc(0);

export class Connection implements HandshakeHost, DtlsSession {
  state: 'handshaking' | 'established' | 'closed' = 'handshaking';
  handshake: ServerHandshake | undefined;
  session: HandshakeResult | undefined;
  /** Who the handshake proved the peer to be, built once at the handshake's end. */
  peerDescription: PeerDescription | undefined;
  /** Last authenticated record (or, while handshaking, the creation): what the idle timeout counts from. */
  lastActivity = Date.now();
  /** What a failed handshake had learned, for its log line: identity (if it got that far) and suite. */
  failedHandshake: { identity?: Buffer; suiteName: string; failure: HandshakeFailure; detail?: string } | undefined;
  readonly createdAt = Date.now();
  private records: RecordLayer;
  private readonly overhead: number;
  private lastFinalFlightAt = 0;
  private failure: { reason: HandshakeFailure; detail?: string } | undefined;
  private addressValue: string;
  private portValue: number;
  /** Set once established, for a session whose peer sends us our CID. */
  private tracker: PeerAddressTracker | undefined;
  /** Source and size of the datagram whose records are being read. */
  private inbound: { from: PeerAddress; bytes: number } | undefined;
  /** A fatal alert went out or came in (RFC 5246 7.2.2). */
  private fatalAlert = false;
  /** A record authenticated under epoch-1 keys: the peer holds them. */
  private keysProven = false;
  /** The cached session the attached abbreviated handshake resumes, by its session ID. */
  private resumingId: Buffer | undefined;

  constructor(
    address: string,
    port: number,
    private readonly events: ConnectionEvents,
    private readonly mtu: number,
    /** Epoch-0 sequence numbers continue past the ClientHello's, so OpenSSL does not see a replay. */
    firstWriteSeq: number,
    /** The CIDs the connection_id exchange settled (none: the RFC 6347 record format). */
    readonly cid: CidUse = {},
  ) {
    this.addressValue = address;
    this.portValue = port;
    this.records = new RecordLayer(firstWriteSeq);
    this.records.useCid(cid);
    this.overhead = address.includes(':') ? IPV6_UDP_OVERHEAD : IPV4_UDP_OVERHEAD;
  }

  /** Where the peer's newest authenticated record came from (RFC 9146 section 6). */
  get address(): string {
    return this.addressValue;
  }

  get port(): number {
    return this.portValue;
  }

  /** The path of the newest authenticated record (PeerAddress.via); undefined: direct. */
  get via(): number | undefined {
    return this.tracker?.address.via;
  }

  get key(): string {
    return peerKey(this.address, this.port);
  }

  // --- DtlsSession (meaningful once established) ---

  get identity(): Buffer {
    return this.session?.identity ?? EMPTY;
  }

  get identityText(): string {
    return this.peerDescription?.identity ?? '';
  }

  get pskTag(): string {
    return this.session?.pskTag ?? '';
  }

  get cipherSuite(): string {
    return this.session?.suiteName ?? '';
  }

  get resumed(): 'id' | 'ticket' | undefined {
    return this.session?.resumed;
  }

  get isOpen(): boolean {
    return this.state === 'established';
  }

  /**
   * The session ID under which the server's session cache holds this connection's session: a
   * full handshake's that was cached, or the one resumed by ID. While an abbreviated handshake
   * runs, only once a record authenticated under the resumed session's keys: the ID came in
   * the clear (RFC 5246 F.1.4), and a stranger who repeats it must not make the session
   * unresumable. Undefined for a ticket's session, whose ID is the client's (RFC 5077 3.4).
   */
  get cachedSessionId(): Buffer | undefined {
    const s = this.session;
    if (s) return s.resumed === 'id' || s.resumable ? s.sessionId : undefined;
    return this.keysProven ? this.resumingId : undefined;
  }

  send(data: Buffer): boolean {
    return this.sendApplicationData(data);
  }

  attachHandshake(h: ServerHandshake): void {
    this.handshake = h;
    this.resumingId = h.resumedSessionId;
  }

  /** The records of one datagram, from `from` (default: the current address), `bytes` long. */
  onRecords(records: readonly DTLSRecord[], from?: PeerAddress, bytes = 0): void {
    this.inbound = from && { from, bytes };
    for (const r of records) {
      if (this.state === 'closed') break;
      this.onRecord(r);
    }
    this.inbound = undefined;
  }

  /**
   * For a session that has a new handshake pending on the same address and port: takes the
   * records this session can authenticate and returns the rest for the handshake.
   */
  takeOwnRecords(records: readonly DTLSRecord[], from?: PeerAddress, bytes = 0): DTLSRecord[] {
    const rest: DTLSRecord[] = [];
    this.inbound = from && { from, bytes };
    for (const r of records) {
      if (this.state !== 'closed' && this.records.canRead(r.epoch) && this.records.isFresh(r)) {
        const opened = this.records.open(r);
        if (opened) {
          this.onAuthenticated(r, opened);
          continue;
        }
      }
      rest.push(r);
    }
    this.inbound = undefined;
    return rest;
  }

  /** Encrypts application data in the current write epoch; false when the session is not established. */
  sendApplicationData(data: Buffer): boolean {
    if (this.state !== 'established' || data.length > MAX_PLAINTEXT_LENGTH) return false;
    return this.sendRecord(ContentType.application_data, data);
  }

  /** An alert in the current write epoch: plaintext until our ChangeCipherSpec has gone out. */
  sendAlert(level: number, description: number): void {
    if (level === AlertLevel.fatal) this.fatalAlert = true;
    this.sendRecord(ContentType.alert, encodeAlert(level, description));
  }

  /** Ends the session: sends close_notify when asked, forgets keys, tells the server. */
  close(reason: string, notify: boolean, failure?: HandshakeFailure): void {
    if (this.state === 'closed') return;
    if (notify) this.sendAlert(AlertLevel.warning, AlertDescription.close_notify);
    const handshaking = this.state === 'handshaking';
    const why = handshaking ? (this.failure ?? { reason: failure ?? 'server_closing' }) : undefined;
    if (why) {
      this.failedHandshake = { identity: this.handshake?.peerIdentity, suiteName: this.handshake?.suiteName ?? '', failure: why.reason, detail: why.detail };
    }
    this.state = 'closed';
    this.handshake?.dispose();
    this.handshake = undefined;
    this.session?.masterSecret.fill(0);
    this.records.clear();
    this.events.onClosed(this, reason, why?.reason, this.fatalAlert);
  }

  // --- HandshakeHost ---

  transmit(items: readonly FlightItem[]): void {
    if (this.state === 'closed') return;
    const records: Buffer[] = [];
    const push = (rec: Buffer | undefined): void => {
      if (rec) records.push(rec);
    };
    for (const item of items) {
      if (item.kind === 'change_cipher_spec') {
        push(this.records.seal(ContentType.change_cipher_spec, CCS_BODY, item.epoch));
        // RFC 5246 7.1: our records after our ChangeCipherSpec use the new keys, not before.
        this.records.changeCipherSpecSent(item.epoch);
        continue;
      }
      const expansion = this.records.expansion(item.epoch);
      const maxBody = this.mtu - this.overhead - RECORD_HEADER_LENGTH - HANDSHAKE_HEADER_LENGTH - expansion;
      for (const frag of fragmentHandshake(item.msgType, item.messageSeq, item.body, maxBody)) {
        push(this.records.seal(ContentType.handshake, frag, item.epoch));
      }
    }
    this.sendPacked(records);
  }

  installEpoch1(read: RecordProtection, write: RecordProtection, expansion: number): void {
    this.records.installReadKeys(read);
    this.records.installWriteKeys(write, expansion);
  }

  replay(records: DTLSRecord[]): void {
    this.onRecords(records);
  }

  fail(alert: number, reason: HandshakeFailure, detail?: string): void {
    if (this.state === 'closed') return;
    this.failure = { reason, detail };
    // In the current write epoch: epoch 0 until our CCS, which a failed handshake never sent.
    this.sendAlert(AlertLevel.fatal, alert);
    this.close(detail ? `${reason}: ${detail}` : reason, false);
  }

  complete(result: HandshakeResult): void {
    // The handshake is over: nothing below the read epoch (epoch 0, unauthenticated) is read again.
    this.records.retireOldEpochs();
    this.establish(result);
    this.handshake = undefined;
    this.lastActivity = Date.now();
    this.events.onEstablished(this, result);
  }

  // --- graceful restart (session-export.ts) ---

  /** The record layer's state of an established session, for a hand-over; undefined otherwise. */
  exportRecords(): RecordLayerSnapshot | undefined {
    return this.state === 'established' ? this.records.snapshot() : undefined;
  }

  /**
   * Becomes the established session `result`, whose records go on from `records`: the session
   * an other process handed over. No handshake ran here, so no onEstablished either.
   */
  restoreEstablished(records: RecordLayer, result: HandshakeResult, lastActivity: number): void {
    if (this.state !== 'handshaking' || this.handshake) return;
    // The CIDs the session settled before the hand-over (RFC 9146) go on in its records.
    records.useCid(this.cid);
    this.records = records;
    this.establish(result);
    this.lastActivity = lastActivity;
  }

  /** After a hand-over that failed half-way: see RecordLayer.skipWriteSequence. */
  skipWriteSequence(n: number): void {
    this.records.skipWriteSequence(n);
  }

  private establish(result: HandshakeResult): void {
    this.session = result;
    this.peerDescription = Object.freeze({
      identity: result.identity.toString('utf8'),
      identityBytes: result.identity,
      pskTag: result.pskTag,
      cipherSuite: result.suiteName,
    });
    if (this.records.receivesCid) this.tracker = new PeerAddressTracker({ address: this.address, port: this.port });
    this.state = 'established';
  }

  // --- inbound ---

  private onRecord(r: DTLSRecord): void {
    if (this.handshake?.isBusy) {
      this.handshake.enqueue(r);
      return;
    }
    let opened: OpenedRecord | undefined;
    if (this.records.canRead(r.epoch)) {
      opened = this.records.open(r);
    } else if (r.epoch === 1 && this.handshake && this.records.isFresh(r)) {
      // Epoch-1 keys are not chosen yet: the handshake tries each candidate key's.
      opened = this.handshake.openEpoch1(r, (p) => this.records.openWith(p, r));
      if (opened) this.records.accept(r);
    }
    // RFC 6347 4.1.2.7: records that do not authenticate (or have no keys) are dropped.
    if (opened) this.onAuthenticated(r, opened);
  }

  /**
   * RFC 9146 section 6: an authenticated record (its window already accepted it) from another
   * address moves the session only when it is newer than the newest record seen.
   */
  private trackPeerAddress(r: DTLSRecord): void {
    const tracker = this.tracker;
    const inbound = this.inbound;
    if (!tracker || !inbound || this.state !== 'established') return;
    const previous = tracker.address;
    const verdict = tracker.onAuthenticated(inbound.from, r.epoch, r.sequenceNumber, inbound.bytes);
    if (verdict === 'same') return;
    if (verdict === 'moved') {
      this.addressValue = inbound.from.address;
      this.portValue = inbound.from.port;
    }
    this.events.onPeerAddress?.(this, verdict, inbound.from, previous);
  }

  private onAuthenticated(r: DTLSRecord, opened: OpenedRecord): void {
    const plaintext = opened.content;
    const type = opened.type;
    if (r.epoch > 0) this.keysProven = true;
    if (plaintext.length > MAX_PLAINTEXT_LENGTH) {
      // RFC 5246 6.2.1 and 7.2.2: authenticated, and too long: the peer is broken.
      if (this.state === 'handshaking') return this.fail(AlertDescription.record_overflow, 'record_overflow');
      this.sendAlert(AlertLevel.fatal, AlertDescription.record_overflow);
      return this.close('record_overflow', false);
    }
    if (r.epoch > 0) {
      this.lastActivity = Date.now();
      this.trackPeerAddress(r);
    }
    if (this.state === 'closed') return;
    switch (type) {
      case ContentType.handshake:
        return this.onHandshake(r, plaintext);
      case ContentType.change_cipher_spec:
        return; // nothing to do: the first epoch-1 record is what switches the read keys
      case ContentType.alert:
        return this.onAlert(plaintext);
      case ContentType.application_data:
        // Application data is only ever valid under the negotiated keys.
        if (this.state === 'established' && r.epoch > 0) this.events.onData(this, plaintext);
        return;
    }
  }

  private onHandshake(r: DTLSRecord, plaintext: Buffer): void {
    if (this.handshake) return this.handshake.onHandshakeFragment(plaintext);
    if (this.state !== 'established') return;
    // Established: only epoch-1 records get here (the record layer retired epoch 0).
    const fragments = parseHandshakeFragments(plaintext);
    if (!fragments) return;
    if (fragments.some((f) => f.msgType === HandshakeType.client_hello)) {
      // RFC 5746 and our policy: no renegotiation; the session goes on.
      this.events.onRefused?.(this, 'renegotiation_refused');
      this.sendAlert(AlertLevel.warning, AlertDescription.no_renegotiation);
      return;
    }
    if (!fragments.some((f) => f.msgType === HandshakeType.finished)) return;
    // The client's Finished again, under its epoch-1 keys: its flight 5 went out again, so our
    // final flight was lost (RFC 6347 4.2.4). Resend it, at most once a second, so a replayed
    // flight cannot turn the server into an amplifier.
    const now = Date.now();
    if (this.session && now - this.lastFinalFlightAt >= 1000) {
      this.lastFinalFlightAt = now;
      this.transmit(this.session.finalFlight);
    }
  }

  private onAlert(plaintext: Buffer): void {
    const alert = parseAlert(plaintext);
    if (!alert) return;
    if (alert.description === AlertDescription.close_notify) {
      this.close('peer sent close_notify', this.state === 'established', 'peer_alert');
    } else if (alert.level === AlertLevel.fatal) {
      this.fatalAlert = true;
      this.close(`peer sent fatal alert ${alert.description}`, false, 'peer_alert');
    }
  }

  // --- outbound ---

  /** One record in the current write epoch; a session whose sequence numbers ran out is closed. */
  private sendRecord(type: number, plaintext: Buffer): boolean {
    if (this.state === 'closed') return false;
    const rec = this.records.seal(type, plaintext);
    if (rec) {
      this.sendDatagram(rec);
      return true;
    }
    this.close('sequence numbers exhausted', false);
    return false;
  }

  /** Packs records into as few datagrams as the MTU allows. */
  private sendPacked(records: Buffer[]): void {
    const budget = this.mtu - this.overhead;
    let batch: Buffer[] = [];
    let size = 0;
    for (const rec of records) {
      if (size + rec.length > budget && batch.length > 0) {
        this.sendDatagram(batch.length === 1 ? batch[0] : Buffer.concat(batch, size));
        batch = [];
        size = 0;
      }
      batch.push(rec);
      size += rec.length;
    }
    if (batch.length > 0) this.sendDatagram(batch.length === 1 ? batch[0] : Buffer.concat(batch, size));
  }

  /**
   * To the current address. After a move, an address that has not proven itself gets no more
   * than PeerAddressTracker allows (RFC 9146 section 6: nothing large to an unproven address);
   * what it holds back, the peer's or CoAP's retransmission brings again.
   */
  private sendDatagram(datagram: Buffer): void {
    if (this.tracker && !this.tracker.maySend(datagram.length)) {
      this.events.onUnprovenSendHeld?.(this);
      return;
    }
    this.events.sendDatagram(datagram, this.addressValue, this.portValue, this.via);
  }
}

export function peerKey(address: string, port: number): string {
  return `${address}|${port}`;
}
