/**
 * Protecting and opening tls12_cid records (RFC 9146 sections 4 and 5) on top of a cipher suite
 * whose record protection lets the caller supply the additional data. The suites' additional
 * data is built inside `RecordProtection` today (the 13 bytes of RFC 5246); the CID form needs
 * its own. `AdRecordProtection` is the one hook the suites need to grow: the same seal/open,
 * with `additionalData(length)` in place of writeAdditionalData(..., length), where `length` is
 * the one each suite already passes (the plaintext length for AEAD and MAC-then-encrypt, the
 * IV ‖ ciphertext length for encrypt-then-MAC), exactly what section 5 puts last in its prefix.
 */

import { ContentType } from './constants.js';
import { cidAdditionalData, encodeInnerPlaintext, parseInnerPlaintext } from './cid.js';
import { type CidRecord, encodeCidRecord } from './cid-record.js';

export interface AdRecordProtection {
  seal(epoch: number, seq: number, plaintext: Buffer, additionalData: (length: number) => Buffer): Buffer;
  open(epoch: number, seq: number, fragment: Buffer, additionalData: (length: number) => Buffer): Buffer | undefined;
}

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

export function sealCidRecord(protection: AdRecordProtection, r: CidRecordToSeal): Buffer {
  const inner = encodeInnerPlaintext(r.content, r.type, r.padding ?? 0);
  const encContent = protection.seal(r.epoch, r.seq, inner, (length) => cidAdditionalData(r.version, r.epoch, r.seq, r.cid, length));
  return encodeCidRecord(r.version, r.epoch, r.seq, r.cid, encContent);
}

/**
 * The real type and content of a tls12_cid record, or undefined when it is not one, carries
 * another CID than `expectedCid` (our read CID), does not authenticate, or has no real type.
 * The record's own CID is what the additional data covers, so a CID changed on the way fails.
 */
export function openCidRecord(
  protection: AdRecordProtection,
  record: CidRecord,
  expectedCid: Buffer,
): { type: number; content: Buffer } | undefined {
  if (record.type !== ContentType.tls12_cid || !record.cid || !record.cid.equals(expectedCid)) return undefined;
  const cid = record.cid;
  const plaintext = protection.open(record.epoch, record.sequenceNumber, record.fragment, (length) =>
    cidAdditionalData(record.version, record.epoch, record.sequenceNumber, cid, length),
  );
  if (!plaintext) return undefined;
  const inner = parseInnerPlaintext(plaintext);
  return inner && { type: inner.realType, content: inner.content };
}
