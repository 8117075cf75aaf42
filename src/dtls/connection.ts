/**
 * One peer (address and port) after its cookie verified: the record layer state of both
 * directions (epochs, sequence numbers, anti-replay windows, record protection), the
 * handshake while it runs, and then the established session.
 */
import type { RecordProtection } from './ciphers/types.js';
import {
  AlertDescription,
  AlertLevel,
  ContentType,
  DTLS_1_0,
  DTLS_1_2,
  HANDSHAKE_HEADER_LENGTH,
  HandshakeType,
  RECORD_HEADER_LENGTH,
} from './constants.js';
import type { FlightItem } from './flight.js';
import { fragmentHandshake, parseHandshakeFragments } from './handshake/header.js';
import { encodeAlert, parseAlert } from './alert.js';
import { encodeRecord, type DTLSRecord } from './record.js';
import { ReplayWindow } from './replay-window.js';
import type { HandshakeHost, HandshakeResult, ServerHandshake } from './server-handshake.js';
import type { PeerIdentity } from '../coap/types.js';
import type { DtlsSession } from './session.js';

export interface ConnectionEvents {
  /** Writes one datagram to the peer. */
  sendDatagram(datagram: Buffer): void;
  onEstablished(conn: Connection, result: HandshakeResult): void;
  onData(conn: Connection, data: Buffer): void;
  onClosed(conn: Connection, reason: string, failedHandshake: boolean): void;
}

interface ReadState {
  readonly protection: RecordProtection | null;
  readonly window: ReplayWindow;
}

interface WriteState {
  readonly protection: RecordProtection | null;
  /** Bytes the protection adds to a record (explicit nonce, tag or MAC and padding). */
  readonly expansion: number;
  seq: number;
}

/** IPv4 and UDP headers: the MTU counts them, the datagram payload does not. */
const IP_UDP_OVERHEAD = 28;

const CCS_BODY = Buffer.from([1]);
const EMPTY = Buffer.alloc(0);

export class Connection implements HandshakeHost, DtlsSession {
  state: 'handshaking' | 'established' | 'closed' = 'handshaking';
  handshake: ServerHandshake | undefined;
  session: HandshakeResult | undefined;
  /** Who the handshake proved the peer to be, as the CoAP side sees it. */
  peerIdentity: PeerIdentity | undefined;
  lastActivity = Date.now();
  /** What a failed handshake had learned, for its log line: identity (if it got that far) and suite. */
  failedHandshake: { identity?: Buffer; suiteName: string } | undefined;
  readonly createdAt = Date.now();
  private readonly reads = new Map<number, ReadState>();
  private readonly writes = new Map<number, WriteState>();
  private writeEpoch = 0;
  private lastFinalFlightAt = 0;

  constructor(
    readonly address: string,
    readonly port: number,
    private readonly events: ConnectionEvents,
    private readonly mtu: number,
    /** Epoch-0 sequence numbers continue past the ClientHello's, so OpenSSL does not see a replay. */
    firstWriteSeq: number,
  ) {
    this.reads.set(0, { protection: null, window: new ReplayWindow() });
    this.writes.set(0, { protection: null, expansion: 0, seq: firstWriteSeq });
  }

  get key(): string {
    return peerKey(this.address, this.port);
  }

  // --- DtlsSession (meaningful once established) ---

  get identity(): Buffer {
    return this.session?.identity ?? EMPTY;
  }

  get identityText(): string {
    return this.peerIdentity?.identity ?? '';
  }

  get pskTag(): string {
    return this.session?.keyLabel ?? '';
  }

  get cipherSuite(): string {
    return this.session?.suiteName ?? '';
  }

  get isOpen(): boolean {
    return this.state === 'established';
  }

  send(data: Buffer): boolean {
    return this.sendApplicationData(data);
  }

  attachHandshake(h: ServerHandshake): void {
    this.handshake = h;
  }

  onRecords(records: readonly DTLSRecord[]): void {
    this.lastActivity = Date.now();
    for (const r of records) {
      if (this.state === 'closed') return;
      this.onRecord(r);
    }
  }

  /** Encrypts application data in the current epoch; false when the session is not established. */
  sendApplicationData(data: Buffer): boolean {
    if (this.state !== 'established') return false;
    this.events.sendDatagram(this.protect(ContentType.application_data, this.writeEpoch, data));
    return true;
  }

  sendAlert(level: number, description: number): void {
    this.events.sendDatagram(this.protect(ContentType.alert, this.writeEpoch, encodeAlert(level, description)));
  }

  /** Ends the session: sends close_notify when asked, forgets keys, tells the server. */
  close(reason: string, notify: boolean): void {
    if (this.state === 'closed') return;
    if (notify) this.sendAlert(AlertLevel.warning, AlertDescription.close_notify);
    const failedHandshake = this.state === 'handshaking';
    if (failedHandshake && this.handshake) {
      this.failedHandshake = { identity: this.handshake.peerIdentity, suiteName: this.handshake.suiteName };
    }
    this.state = 'closed';
    this.handshake?.dispose();
    this.handshake = undefined;
    this.session?.masterSecret.fill(0);
    this.reads.clear();
    this.writes.clear();
    this.events.onClosed(this, reason, failedHandshake);
  }

  // --- HandshakeHost ---

  transmit(items: readonly FlightItem[]): void {
    if (this.state === 'closed') return;
    const records: Buffer[] = [];
    for (const item of items) {
      if (item.kind === 'change_cipher_spec') {
        records.push(this.protect(ContentType.change_cipher_spec, item.epoch, CCS_BODY));
        continue;
      }
      const expansion = this.writes.get(item.epoch)?.expansion ?? 0;
      const maxBody = this.mtu - IP_UDP_OVERHEAD - RECORD_HEADER_LENGTH - HANDSHAKE_HEADER_LENGTH - expansion;
      for (const frag of fragmentHandshake(item.msgType, item.messageSeq, item.body, maxBody)) {
        records.push(this.protect(ContentType.handshake, item.epoch, frag));
      }
    }
    this.sendPacked(records);
  }

  installEpoch1(read: RecordProtection, write: RecordProtection, expansion: number): void {
    this.reads.set(1, { protection: read, window: new ReplayWindow() });
    this.writes.set(1, { protection: write, expansion, seq: 0 });
    this.writeEpoch = 1;
  }

  replay(records: DTLSRecord[]): void {
    this.onRecords(records);
  }

  fail(alert: number, reason: string): void {
    if (this.state === 'closed') return;
    // Alerts during the handshake go in epoch 0 unless keys are in place for the client.
    this.sendAlert(AlertLevel.fatal, alert);
    this.close(reason, false);
  }

  complete(result: HandshakeResult): void {
    this.session = result;
    this.peerIdentity = Object.freeze({
      identity: result.identity.toString('utf8'),
      identityBytes: result.identity,
      keyLabel: result.keyLabel,
      cipherSuite: result.suiteName,
    });
    this.state = 'established';
    this.handshake = undefined;
    this.events.onEstablished(this, result);
  }

  // --- inbound ---

  private onRecord(r: DTLSRecord): void {
    // A first ClientHello may carry the DTLS 1.0 record version; after that only 1.2.
    if (r.version !== DTLS_1_2 && !(r.version === DTLS_1_0 && r.epoch === 0)) return;
    if (this.handshake?.isBusy) {
      this.handshake.enqueue(r);
      return;
    }
    const read = this.reads.get(r.epoch);
    let plaintext: Buffer | undefined;
    if (read) {
      if (read.window.isDuplicate(r.sequenceNumber)) return;
      plaintext = read.protection
        ? read.protection.open(r.type, r.version, r.epoch, r.sequenceNumber, r.fragment)
        : r.fragment;
      if (!plaintext) return; // RFC 6347 4.1.2.7: records that do not authenticate are dropped
      read.window.accept(r.sequenceNumber);
    } else if (r.epoch === 1 && this.handshake) {
      plaintext = this.handshake.openEpoch1(r);
      if (!plaintext) return;
      this.reads.get(1)?.window.accept(r.sequenceNumber);
    } else {
      return;
    }
    this.dispatch(r, plaintext);
  }

  private dispatch(r: DTLSRecord, plaintext: Buffer): void {
    switch (r.type) {
      case ContentType.handshake:
        return this.onHandshake(r, plaintext);
      case ContentType.change_cipher_spec:
        return; // nothing to do: the first epoch-1 record is what switches the read keys
      case ContentType.alert:
        return this.onAlert(plaintext);
      case ContentType.application_data:
        // Application data is only ever valid under the negotiated keys.
        if (this.state === 'established' && r.epoch === this.writeEpoch && r.epoch > 0) this.events.onData(this, plaintext);
        return;
    }
  }

  private onHandshake(r: DTLSRecord, plaintext: Buffer): void {
    if (this.handshake) return this.handshake.onHandshakeFragment(plaintext);
    if (this.state !== 'established') return;
    const fragments = parseHandshakeFragments(plaintext);
    if (!fragments) return;
    if (r.epoch > 0 && fragments.some((f) => f.msgType === HandshakeType.client_hello)) {
      // RFC 5746 and our policy: no renegotiation; the session goes on.
      this.sendAlert(AlertLevel.warning, AlertDescription.no_renegotiation);
      return;
    }
    // The client retransmitted flight 5: our final flight was lost. Resend it, at most once a
    // second, so a replayed flight cannot turn the server into an amplifier.
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
      this.close('peer sent close_notify', this.state === 'established');
    } else if (alert.level === AlertLevel.fatal) {
      this.close(`peer sent fatal alert ${alert.description}`, false);
    }
  }

  // --- outbound ---

  private protect(type: number, epoch: number, plaintext: Buffer): Buffer {
    const w = this.writes.get(epoch);
    if (!w) throw new Error(`no write state for epoch ${epoch}`);
    const seq = w.seq++;
    const fragment = w.protection ? w.protection.seal(type, DTLS_1_2, epoch, seq, plaintext) : plaintext;
    return encodeRecord(type, DTLS_1_2, epoch, seq, fragment);
  }

  /** Packs records into as few datagrams as the MTU allows. */
  private sendPacked(records: Buffer[]): void {
    const budget = this.mtu - IP_UDP_OVERHEAD;
    let batch: Buffer[] = [];
    let size = 0;
    for (const rec of records) {
      if (size + rec.length > budget && batch.length > 0) {
        this.events.sendDatagram(batch.length === 1 ? batch[0] : Buffer.concat(batch, size));
        batch = [];
        size = 0;
      }
      batch.push(rec);
      size += rec.length;
    }
    if (batch.length > 0) this.events.sendDatagram(batch.length === 1 ? batch[0] : Buffer.concat(batch, size));
  }
}

export function peerKey(address: string, port: number): string {
  return `${address}|${port}`;
}
