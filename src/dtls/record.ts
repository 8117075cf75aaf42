/** DTLS 1.2 record layer framing (RFC 6347 section 4.1). */

import { RECORD_HEADER_LENGTH } from './constants.js';
import { WireReader, decode, malformed } from './wire.js';

/** Largest DTLSCiphertext.length (RFC 6347 4.1 / RFC 5246 6.2.3); plaintexts are held to 2^14 by the caller. */
export const MAX_RECORD_FRAGMENT_LENGTH = 2 ** 14 + 2048;
export const MAX_SEQUENCE_NUMBER = 2 ** 48 - 1;

export interface DTLSRecord {
  type: number;
  version: number;
  epoch: number;
  /** 48-bit record sequence number. */
  sequenceNumber: number;
  /** A view into the datagram, not a copy. */
  fragment: Buffer;
}

function readRecord(r: WireReader): DTLSRecord {
  const type = r.u8();
  const version = r.u16();
  const epoch = r.u16();
  const sequenceNumber = r.u48();
  const length = r.u16();
  if (length > MAX_RECORD_FRAGMENT_LENGTH) malformed();
  return { type, version, epoch, sequenceNumber, fragment: r.bytes(length) };
}

/**
 * Splits a datagram into its records (a datagram may carry several, RFC 6347 4.1). Parsing
 * stops at the first record that is truncated or too long; the records before it are kept,
 * since each record stands alone and a bad tail says nothing about them. Content type and
 * version are not judged here: that is the connection state's business.
 */
export function parseRecords(datagram: Buffer): { records: DTLSRecord[]; malformed: boolean } {
  const records: DTLSRecord[] = [];
  let offset = 0;
  while (offset < datagram.length) {
    const rest = datagram.subarray(offset);
    if (rest.length < RECORD_HEADER_LENGTH) return { records, malformed: true };
    const length = rest.readUInt16BE(RECORD_HEADER_LENGTH - 2);
    const record = decode(rest.subarray(0, RECORD_HEADER_LENGTH + length), readRecord);
    if (!record) return { records, malformed: true };
    records.push(record);
    offset += RECORD_HEADER_LENGTH + length;
  }
  return { records, malformed: false };
}

/** Writes the 13-byte record header at `offset` in `target`; returns the offset after it. */
export function writeRecordHeader(
  target: Buffer,
  offset: number,
  type: number,
  version: number,
  epoch: number,
  seq: number,
  length: number,
): number {
  if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQUENCE_NUMBER) {
    throw new RangeError(`record sequence number ${seq} outside 48 bits`);
  }
  if (length > MAX_RECORD_FRAGMENT_LENGTH) throw new RangeError(`record length ${length} too large`);
  offset = target.writeUInt8(type, offset);
  offset = target.writeUInt16BE(version, offset);
  offset = target.writeUInt16BE(epoch, offset);
  offset = target.writeUIntBE(seq, offset, 6);
  return target.writeUInt16BE(length, offset);
}

export function encodeRecord(type: number, version: number, epoch: number, sequenceNumber: number, fragment: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_LENGTH + fragment.length);
  const at = writeRecordHeader(out, 0, type, version, epoch, sequenceNumber, fragment.length);
  fragment.copy(out, at);
  return out;
}
