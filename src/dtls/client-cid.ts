/**
 * Connection ID (RFC 9146) on the client side of the project's test client. Written from the
 * RFC text on purpose without the server's CID modules (cid.ts, cid-record.ts,
 * cid-protection.ts), so that a mistake in those shows up as records the two sides cannot
 * read, not as the same mistake on both ends. What it shares with the server is the cipher
 * suites' RecordProtection (which takes the caller's additional data) and the replay window.
 *
 * Section 3: each side names in its hello the CID it wants to *receive*. Records of epoch 1 and
 * up are sent with the CID the peer named, unless that is empty; epoch 0 never has a CID.
 * Section 4, the record:
 *     tls12_cid(25) | version(2) | epoch(2) | sequence_number(6) | cid | length(2) | enc_content
 * and enc_content protects DTLSInnerPlaintext = content | real_type | zero padding.
 * Section 5, additional data (5.3, AEAD; 5.1/5.2 differ only in what `length` counts, which
 * the suite decides):
 *     8 x 0xff | 25 | cid_length | 25 | version | epoch | sequence_number | cid | length
 */
import type { RecordProtection } from './ciphers/types.js';
import type { Extension } from './extensions.js';
import { ReplayWindow } from './replay-window.js';

export const CONNECTION_ID_EXTENSION = 54;
const TLS12_CID = 25;
const PLAIN_HEADER = 13;

/** A record as the client reads it: `cid` set for tls12_cid records. */
export interface ClientRecord {
  type: number;
  version: number;
  epoch: number;
  sequenceNumber: number;
  cid?: Buffer;
  fragment: Buffer;
}

export class ClientCid {
  /** The server's CID: what our protected records carry (undefined: plain records). */
  writeCid: Buffer | undefined;
  /** Set when the server agreed to send us our (non-empty) CID. */
  readCid: Buffer | undefined;
  private writeSeq = 0;
  private readonly window = new ReplayWindow();

  /** `offer`: the CID we want to receive; empty = "I send CIDs but do not want one". */
  constructor(readonly offer: Buffer) {
    if (offer.length > 255) throw new RangeError('a CID has at most 255 bytes');
  }

  /** Our connection_id extension for the ClientHello. */
  extension(): Extension {
    const data = Buffer.alloc(1 + this.offer.length);
    data[0] = this.offer.length;
    this.offer.copy(data, 1);
    return { type: CONNECTION_ID_EXTENSION, data };
  }

  /**
   * The server's connection_id answer, or its absence (CID not used: plain records both ways).
   * Returns an error text for a malformed answer.
   */
  settle(serverExtensions: readonly Extension[]): string | undefined {
    const ext = serverExtensions.find((e) => e.type === CONNECTION_ID_EXTENSION);
    if (!ext) return undefined;
    if (ext.data.length < 1 || ext.data[0] !== ext.data.length - 1) return 'malformed connection_id in ServerHello';
    const serverCid = Buffer.from(ext.data.subarray(1));
    if (serverCid.length > 0) this.writeCid = serverCid;
    if (this.offer.length > 0) this.readCid = this.offer;
    return undefined;
  }

  /** True when protected records we send are tls12_cid records. */
  get sendsCid(): boolean {
    return this.writeCid !== undefined;
  }

  /** Bytes a tls12_cid record adds over a plain one: the CID and the real type. */
  get extraBytes(): number {
    return this.writeCid ? this.writeCid.length + 1 : 0;
  }

  /** One tls12_cid record under `protection`, with its own sequence numbers (epoch 1). */
  seal(protection: RecordProtection, version: number, epoch: number, type: number, content: Buffer): Buffer {
    const cid = this.writeCid!;
    const seq = this.writeSeq++;
    const inner = Buffer.concat([content, Buffer.from([type])]);
    const sealed = protection.seal(TLS12_CID, version, epoch, seq, inner, (length) => additionalData(version, epoch, seq, cid, length));
    const header = Buffer.alloc(PLAIN_HEADER + cid.length);
    header[0] = TLS12_CID;
    header.writeUInt16BE(version, 1);
    header.writeUInt16BE(epoch, 3);
    header.writeUIntBE(seq, 5, 6);
    cid.copy(header, 11);
    header.writeUInt16BE(sealed.length, 11 + cid.length);
    return Buffer.concat([header, sealed]);
  }

  /** Real type and content of a tls12_cid record for us, or undefined (dropped). */
  open(protection: RecordProtection, r: ClientRecord): { type: number; content: Buffer } | undefined {
    const cid = this.readCid;
    if (!cid || r.type !== TLS12_CID || !r.cid?.equals(cid) || this.window.isDuplicate(r.sequenceNumber)) return undefined;
    const plain = protection.open(TLS12_CID, r.version, r.epoch, r.sequenceNumber, r.fragment, (length) =>
      additionalData(r.version, r.epoch, r.sequenceNumber, cid, length),
    );
    if (!plain) return undefined;
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--; // the padding; the last non-zero byte is the real type
    if (end < 0) return undefined;
    this.window.accept(r.sequenceNumber);
    return { type: plain[end]!, content: plain.subarray(0, end) };
  }

  /** Splits a datagram into records: tls12_cid ones with our CID's length, others as RFC 6347 frames them. */
  splitRecords(datagram: Buffer): ClientRecord[] {
    const out: ClientRecord[] = [];
    let at = 0;
    while (at + PLAIN_HEADER <= datagram.length) {
      const type = datagram[at]!;
      const cidLength = type === TLS12_CID && this.readCid ? this.readCid.length : 0;
      const lengthAt = at + 11 + cidLength;
      if (lengthAt + 2 > datagram.length) break;
      const end = lengthAt + 2 + datagram.readUInt16BE(lengthAt);
      if (end > datagram.length) break;
      out.push({
        type,
        version: datagram.readUInt16BE(at + 1),
        epoch: datagram.readUInt16BE(at + 3),
        sequenceNumber: datagram.readUIntBE(at + 5, 6),
        cid: cidLength > 0 ? datagram.subarray(at + 11, lengthAt) : undefined,
        fragment: datagram.subarray(lengthAt + 2, end),
      });
      at = end;
    }
    return out;
  }
}

/** RFC 9146 section 5's additional data, as listed at the top of this file. */
function additionalData(version: number, epoch: number, seq: number, cid: Buffer, length: number): Buffer {
  const head = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, TLS12_CID, cid.length, TLS12_CID]);
  const fields = Buffer.alloc(10);
  fields.writeUInt16BE(version, 0);
  fields.writeUInt16BE(epoch, 2);
  fields.writeUIntBE(seq, 4, 6);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(length, 0);
  return Buffer.concat([head, fields, cid, len]);
}
