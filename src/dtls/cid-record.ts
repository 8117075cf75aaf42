/**
 * The tls12_cid record header (RFC 9146 section 4):
 *
 *   outer_type = tls12_cid(1) ‖ version(2) ‖ epoch(2) ‖ sequence_number(6) ‖ cid[cid_length] ‖
 *   length(2) ‖ enc_content[length]
 *
 * The CID's length is not on the wire: only the receiver knows it, because it chose it. This
 * server gives all its CIDs one length (the cidLength setting), so any datagram can be split
 * into records before its session is known, and the CID then finds the session.
 */

import { ContentType, RECORD_HEADER_LENGTH } from './constants.js';
import { MAX_CID_LENGTH } from './cid.js';
import { writeSeqNum } from './ciphers/additional-data.js';
import { type DTLSRecord, MAX_RECORD_FRAGMENT_LENGTH, MAX_SEQUENCE_NUMBER, parseRecords } from './record.js';
import { decode, malformed, type WireReader } from './wire.js';

export interface CidRecord extends DTLSRecord {
  /** The CID of a tls12_cid record (a view into the datagram); undefined for the other types. */
  cid?: Buffer;
}

/** Header length of a tls12_cid record whose CID has `cidLength` bytes. */
export function cidRecordHeaderLength(cidLength: number): number {
  return RECORD_HEADER_LENGTH + cidLength;
}

function readCidRecord(r: WireReader, cidLength: number): CidRecord {
  const type = r.u8();
  const version = r.u16();
  const epoch = r.u16();
  const sequenceNumber = r.u48();
  const cid = r.bytes(cidLength);
  const length = r.u16();
  if (length > MAX_RECORD_FRAGMENT_LENGTH) malformed();
  return { type, version, epoch, sequenceNumber, cid, fragment: r.bytes(length) };
}

/**
 * parseRecords (record.ts) for a server whose CIDs are `cidLength` bytes long: tls12_cid
 * records are read with the CID in their header, every other type as RFC 6347 frames it. With
 * cidLength 0 (CID off, or a zero-length CID, with which RFC 9146 section 3 says no tls12_cid
 * record is sent) this is parseRecords: a stray type-25 record is framed plainly and left to
 * the connection, which knows no such type before CID is negotiated. Same contract otherwise:
 * the records before a truncated or oversized one are kept, and nothing is copied.
 */
export function parseCidRecords(datagram: Buffer, cidLength: number): { records: CidRecord[]; malformed: boolean } {
  if (cidLength === 0 || !hasCidRecord(datagram)) return parseRecords(datagram);
  const cidHeader = cidRecordHeaderLength(cidLength);
  const records: CidRecord[] = [];
  let offset = 0;
  while (offset < datagram.length) {
    const rest = datagram.subarray(offset);
    if (rest[0] !== ContentType.tls12_cid) {
      // One plainly framed record, handed to parseRecords alone so that it does not misread
      // a tls12_cid record behind it.
      if (rest.length < RECORD_HEADER_LENGTH) return { records, malformed: true };
      const end = RECORD_HEADER_LENGTH + rest.readUInt16BE(RECORD_HEADER_LENGTH - 2);
      const plain = parseRecords(rest.subarray(0, end));
      if (plain.malformed || plain.records.length !== 1) return { records, malformed: true };
      records.push(plain.records[0]!);
      offset += end;
      continue;
    }
    if (rest.length < cidHeader) return { records, malformed: true };
    const length = rest.readUInt16BE(cidHeader - 2);
    const record = decode(rest.subarray(0, cidHeader + length), (r) => readCidRecord(r, cidLength));
    if (!record) return { records, malformed: true };
    records.push(record);
    offset += cidHeader + length;
  }
  return { records, malformed: false };
}

/**
 * True when a tls12_cid record is among the datagram's records, walked as RFC 6347 frames them
 * up to the first one (all records before it are plain, so their framing is the same): most
 * datagrams have none, and then parseRecords alone reads them, at its own cost.
 */
function hasCidRecord(datagram: Buffer): boolean {
  for (let offset = 0; offset + RECORD_HEADER_LENGTH <= datagram.length; offset += RECORD_HEADER_LENGTH + datagram.readUInt16BE(offset + RECORD_HEADER_LENGTH - 2)) {
    if (datagram[offset] === ContentType.tls12_cid) return true;
  }
  return false;
}

/**
 * The CID of the datagram's first record, if that record is tls12_cid and long enough to hold
 * one: what a dispatcher (the session table, or a primary process routing to workers) needs
 * before anything is parsed or decrypted. A copy is not made.
 */
export function peekCid(datagram: Buffer, cidLength: number): Buffer | undefined {
  if (cidLength === 0 || datagram.length < cidRecordHeaderLength(cidLength)) return undefined;
  if (datagram[0] !== ContentType.tls12_cid) return undefined;
  return datagram.subarray(11, 11 + cidLength);
}

/** A whole tls12_cid record around an already protected `encContent`; one allocation, on every record sent. */
export function encodeCidRecord(version: number, epoch: number, seq: number, cid: Buffer, encContent: Buffer): Buffer {
  if (cid.length > MAX_CID_LENGTH) throw new RangeError(`cid of ${cid.length} bytes`);
  if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQUENCE_NUMBER) throw new RangeError(`record sequence number ${seq} outside 48 bits`);
  if (encContent.length > MAX_RECORD_FRAGMENT_LENGTH) throw new RangeError(`record length ${encContent.length} too large`);
  const header = cidRecordHeaderLength(cid.length);
  const out = Buffer.allocUnsafe(header + encContent.length);
  out[0] = ContentType.tls12_cid;
  out.writeUInt16BE(version, 1);
  writeSeqNum(out, 3, epoch, seq);
  cid.copy(out, 11);
  out.writeUInt16BE(encContent.length, header - 2);
  encContent.copy(out, header);
  return out;
}
