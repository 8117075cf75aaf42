/**
 * Protecting and opening tls12_cid records (RFC 9146 sections 4 and 5) with any of the cipher
 * suites: the suite's RecordProtection takes the section 5 additional data in place of RFC
 * 5246's 13 bytes (`additionalData`, ciphers/types.ts), and the length it hands over is the one
 * section 5 puts last: length_of_DTLSInnerPlaintext for AEAD (5.3) and MAC-then-encrypt (5.1),
 * the IV ‖ ciphertext length for encrypt-then-MAC (5.2).
 */

import type { RecordProtection } from './ciphers/types.js';
import { ContentType } from './constants.js';
import { cidAdditionalData, encodeInnerPlaintext, parseInnerPlaintext } from './cid.js';
import { type CidRecord, encodeCidRecord } from './cid-record.js';

export interface CidRecordToSeal {
  version: number;
  epoch: number;
  seq: number;
  /** The CID the peer asked for (our write CID). */
  cid: Buffer;
  /** The real content type: handshake, alert, application_data... */
  type: number;
  content: Buffer;
  /** Zero bytes after the real type, to hide the content length (section 4). */
  padding?: number;
}

export function sealCidRecord(protection: RecordProtection, r: CidRecordToSeal): Buffer {
  const inner = encodeInnerPlaintext(r.content, r.type, r.padding ?? 0);
  const encContent = protection.seal(ContentType.tls12_cid, r.version, r.epoch, r.seq, inner, (length) =>
    cidAdditionalData(r.version, r.epoch, r.seq, r.cid, length),
  );
  return encodeCidRecord(r.version, r.epoch, r.seq, r.cid, encContent);
}

/**
 * The real type and content of a tls12_cid record, or undefined when it is not one, carries
 * another CID than `expectedCid` (our read CID), does not authenticate, or has no real type.
 * The record's own CID is what the additional data covers, so a CID changed on the way fails.
 */
export function openCidRecord(
  protection: RecordProtection,
  record: CidRecord,
  expectedCid: Buffer,
): { type: number; content: Buffer } | undefined {
  if (record.type !== ContentType.tls12_cid || !record.cid || !record.cid.equals(expectedCid)) return undefined;
  const cid = record.cid;
  const plaintext = protection.open(record.type, record.version, record.epoch, record.sequenceNumber, record.fragment, (length) =>
    cidAdditionalData(record.version, record.epoch, record.sequenceNumber, cid, length),
  );
  if (!plaintext) return undefined;
  const inner = parseInnerPlaintext(plaintext);
  return inner && { type: inner.realType, content: inner.content };
}
