/**
 * The record layer of one DTLS 1.2 peer (RFC 6347 section 4.1), in the manner of pion's
 * `recordlayer`/`state` and Scandium's `DTLSContext`: an explicit current read epoch and write
 * epoch, and per epoch a replay window and a protection. Each rule of the RFC is one line:
 *
 * - a record is read under the keys of its own epoch, or dropped (4.1: no keys for it);
 * - a record that does not authenticate is dropped and moves no window (4.1.2.7);
 * - a duplicate or too-old sequence number is dropped (4.1.2.6);
 * - once the handshake is over, every epoch below the read epoch is retired, so that an
 *   unauthenticated (epoch-0) record can no longer reach the session (RFC 5246 7.1: the
 *   pending state became the current one);
 * - the write epoch changes only when this side sends its ChangeCipherSpec (RFC 5246 7.1), so
 *   that an alert raised before that goes out under the keys the peer can read.
 *
 * - with a Connection ID (RFC 9146 section 3), records of epoch 1 and up go out as tls12_cid
 *   with the peer's CID when the peer asked for one, and must come in as tls12_cid with ours
 *   when we asked for one; epoch 0 never carries a CID. The real content type travels inside.
 *
 * Policy (what an alert or a handshake message means) is the caller's business.
 */
import type { RecordProtection } from './ciphers/types.js';
import { ContentType, DTLS_1_0, DTLS_1_2 } from './constants.js';
import type { CidUse } from './cid-negotiation.js';
import { openCidRecord, sealCidRecord } from './cid-protection.js';
import type { CidRecord } from './cid-record.js';
import { encodeRecord, MAX_SEQUENCE_NUMBER, type DTLSRecord } from './record.js';
import { ReplayWindow } from './replay-window.js';

/** An inbound record once opened: its real content type (inside a tls12_cid record) and content. */
export interface OpenedRecord {
  readonly type: number;
  readonly content: Buffer;
}

/** RFC 5246 6.2.1: a plaintext fragment is at most 2^14 bytes; more is record_overflow. */
export const MAX_PLAINTEXT_LENGTH = 2 ** 14;

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

export interface RecordLayerSnapshot {
  readonly readEpoch: number;
  readonly writeEpoch: number;
  readonly writeSeq: number;
  readonly window: { highest: number; bits: [number, number] };
}

export class RecordLayer {
  private readEpoch = 0;
  private writeEpoch = 0;
  private readonly reads = new Map<number, ReadState>();
  private readonly writes = new Map<number, WriteState>();
  private cid: CidUse = {};

  /** `firstWriteSeq`: where epoch 0's sequence numbers start (the server continues past the ClientHello's). */
  constructor(firstWriteSeq = 0) {
    this.reads.set(0, { protection: null, window: new ReplayWindow() });
    this.writes.set(0, { protection: null, expansion: 0, seq: firstWriteSeq });
  }

  get currentReadEpoch(): number {
    return this.readEpoch;
  }

  get currentWriteEpoch(): number {
    return this.writeEpoch;
  }

  /** The CIDs the connection_id exchange settled (cid-negotiation.ts); they apply from epoch 1 on. */
  useCid(use: CidUse): void {
    this.cid = use;
  }

  /** True when the peer sends us tls12_cid records (we asked for a non-empty CID). */
  get receivesCid(): boolean {
    return this.cid.readCid !== undefined;
  }

  /** True when records of `epoch` have read keys (a retired or future epoch has none). */
  canRead(epoch: number): boolean {
    return this.reads.has(epoch);
  }

  /** The peer's keys for the next epoch: its records of that epoch are read with them from now on. */
  installReadKeys(protection: RecordProtection): void {
    this.readEpoch++;
    this.reads.set(this.readEpoch, { protection, window: new ReplayWindow() });
  }

  /** Our keys for the next epoch; used for records of that epoch, current only after our CCS. */
  installWriteKeys(protection: RecordProtection, expansion: number): void {
    this.writes.set(this.writeEpoch + 1, { protection, expansion, seq: 0 });
  }

  /** Our ChangeCipherSpec went out (in `sentInEpoch`): the write epoch moves past it, once. */
  changeCipherSpecSent(sentInEpoch: number): void {
    if (sentInEpoch === this.writeEpoch && this.writes.has(sentInEpoch + 1)) this.writeEpoch++;
  }

  /** The handshake is over: records of any epoch below the read epoch are dropped from now on. */
  retireOldEpochs(): void {
    for (const epoch of [...this.reads.keys()]) if (epoch < this.readEpoch) this.reads.delete(epoch);
  }

  /**
   * The real type and content of an inbound record, or undefined when it must be dropped:
   * wrong version, no keys for its epoch, a replay, the wrong record format for the CIDs
   * negotiated, or it does not authenticate. A record that opens moves its epoch's window.
   */
  open(r: CidRecord): OpenedRecord | undefined {
    // A first ClientHello may carry the DTLS 1.0 record version; after that only 1.2.
    if (r.version !== DTLS_1_2 && !(r.version === DTLS_1_0 && r.epoch === 0)) return undefined;
    const read = this.reads.get(r.epoch);
    if (!read || read.window.isDuplicate(r.sequenceNumber)) return undefined;
    const opened = read.protection ? this.openWith(read.protection, r) : r.type === ContentType.tls12_cid ? undefined : { type: r.type, content: r.fragment };
    if (opened) read.window.accept(r.sequenceNumber);
    return opened;
  }

  /**
   * Opens a protected record under `protection` (its epoch's, or a candidate's during the
   * handshake) without touching any window. RFC 9146 section 3: once we asked for a CID, a
   * protected record in the plain format is not one the peer may send, and a tls12_cid record
   * must carry our CID (the additional data covers it).
   */
  openWith(protection: RecordProtection, r: CidRecord): OpenedRecord | undefined {
    const readCid = this.cid.readCid;
    if (readCid) return openCidRecord(protection, r, readCid);
    if (r.type === ContentType.tls12_cid) return undefined;
    const content = protection.open(r.type, r.version, r.epoch, r.sequenceNumber, r.fragment);
    return content && { type: r.type, content };
  }

  /** True when `r`'s sequence number was not yet seen in its epoch (for records opened elsewhere). */
  isFresh(r: DTLSRecord): boolean {
    const read = this.reads.get(r.epoch);
    return read === undefined || !read.window.isDuplicate(r.sequenceNumber);
  }

  /** Marks a record that was authenticated outside this layer (a candidate key's Finished). */
  accept(r: DTLSRecord): void {
    this.reads.get(r.epoch)?.window.accept(r.sequenceNumber);
  }

  /** Bytes the protection of `epoch` adds to a record. */
  expansion(epoch: number): number {
    const w = this.writes.get(epoch);
    if (!w) return 0;
    // A tls12_cid record also carries the CID in its header and the real type inside.
    const writeCid = w.protection ? this.cid.writeCid : undefined;
    return w.expansion + (writeCid ? writeCid.length + 1 : 0);
  }

  /**
   * One record under the keys of `epoch` (default: the current write epoch), or undefined when
   * there are none or the epoch's sequence numbers are used up (RFC 6347 4.1: never wrap).
   */
  seal(type: number, plaintext: Buffer, epoch = this.writeEpoch): Buffer | undefined {
    const w = this.writes.get(epoch);
    if (!w || w.seq > MAX_SEQUENCE_NUMBER) return undefined;
    const seq = w.seq++;
    const writeCid = this.cid.writeCid;
    if (w.protection && writeCid) return sealCidRecord(w.protection, { version: DTLS_1_2, epoch, seq, cid: writeCid, type, content: plaintext });
    const fragment = w.protection ? w.protection.seal(type, DTLS_1_2, epoch, seq, plaintext) : plaintext;
    return encodeRecord(type, DTLS_1_2, epoch, seq, fragment);
  }

  /**
   * Graceful restart (session-export.ts): the current epochs, the next write sequence number
   * and the read window of an established session (one read and one write epoch left).
   */
  snapshot(): RecordLayerSnapshot | undefined {
    const read = this.reads.get(this.readEpoch);
    const write = this.writes.get(this.writeEpoch);
    if (!read || !write) return undefined;
    return { readEpoch: this.readEpoch, writeEpoch: this.writeEpoch, writeSeq: write.seq, window: read.window.snapshot() };
  }

  /** The record layer of an established session restored from a snapshot, with its re-derived protections. */
  static restore(s: RecordLayerSnapshot, read: RecordProtection, write: RecordProtection, expansion: number): RecordLayer {
    const layer = new RecordLayer();
    layer.reads.clear();
    layer.writes.clear();
    layer.readEpoch = s.readEpoch;
    layer.writeEpoch = s.writeEpoch;
    layer.reads.set(s.readEpoch, { protection: read, window: ReplayWindow.fromSnapshot(s.window) });
    layer.writes.set(s.writeEpoch, { protection: write, expansion, seq: s.writeSeq });
    return layer;
  }

  /**
   * Skips `n` write sequence numbers of the current epoch: after a hand-over that failed, a
   * record the other process may have sent under the same keys is never repeated with the same
   * sequence number (RFC 6347 4.1.2.1: with AEAD suites it is the nonce).
   */
  skipWriteSequence(n: number): void {
    const w = this.writes.get(this.writeEpoch);
    if (w) w.seq = Math.min(w.seq + n, MAX_SEQUENCE_NUMBER + 1);
  }

  /** Forgets every key: nothing is read or written afterwards. */
  clear(): void {
    this.reads.clear();
    this.writes.clear();
  }
}
