/**
 * Connection ID for DTLS 1.2 (RFC 9146; not draft-ietf-tls-dtls-connection-id-05, whose
 * extension number (53) and additional data differ): the connection_id extension (section 3),
 * the DTLSInnerPlaintext of tls12_cid records (section 4) and their additional data (section 5).
 * The record header itself lives in cid-record.ts, CID allocation in cid-factory.ts.
 */

import { writeSeqNum } from './ciphers/additional-data.js';
import { ContentType, ExtensionType } from './constants.js';
import type { Extension } from './extensions.js';
import { decode, vector } from './wire.js';

/** `opaque cid<0..2^8-1>` (section 3). */
export const MAX_CID_LENGTH = 0xff;
/** RFC 5246 6.2.1: a plaintext fragment holds at most 2^14 bytes. */
export const MAX_INNER_CONTENT_LENGTH = 2 ** 14;

/**
 * The extension_data of connection_id: `struct { opaque cid<0..2^8-1>; } ConnectionId;`.
 * In a ClientHello it is the CID the client wants to receive; in a ServerHello the CID the
 * server wants to receive. Empty means "I send CIDs but do not want to receive one".
 */
export function parseConnectionIdExtension(data: Buffer): Buffer | undefined {
  return decode(data, (r) => r.vector(1, 0, MAX_CID_LENGTH));
}

export function encodeConnectionIdExtension(cid: Buffer): Extension {
  return { type: ExtensionType.connection_id, data: vector(1, cid, 0, MAX_CID_LENGTH, 'cid') };
}

/**
 * DTLSInnerPlaintext (section 4): `content ‖ real_type ‖ zeros[length_of_padding]`. The real
 * content type travels encrypted; the outer record type is always tls12_cid.
 */
export function encodeInnerPlaintext(content: Buffer, realType: number, padding = 0): Buffer {
  if (realType === 0 || realType > 0xff) throw new RangeError(`real_type ${realType}: must be 1..255`);
  if (content.length > MAX_INNER_CONTENT_LENGTH) throw new RangeError(`content of ${content.length} bytes exceeds 2^14`);
  if (!Number.isInteger(padding) || padding < 0) throw new RangeError(`padding ${padding}`);
  const out = Buffer.alloc(content.length + 1 + padding); // zero-filled: the padding is zeros
  content.copy(out, 0);
  out[content.length] = realType;
  return out;
}

export interface InnerPlaintext {
  /** A view into the decrypted fragment. */
  content: Buffer;
  realType: number;
}

/**
 * Undoes encodeInnerPlaintext: the real type is the last non-zero byte (section 4, as in TLS
 * 1.3's TLSInnerPlaintext). A plaintext of zeros only has no type and is malformed (the caller
 * answers with unexpected_message); so is content over 2^14 bytes (record_overflow).
 * The scan is bounded by the fragment that arrived.
 */
export function parseInnerPlaintext(plaintext: Buffer): InnerPlaintext | undefined {
  let i = plaintext.length - 1;
  while (i >= 0 && plaintext[i] === 0) i--;
  if (i < 0 || i > MAX_INNER_CONTENT_LENGTH) return undefined;
  return { content: plaintext.subarray(0, i), realType: plaintext[i]! };
}

/** Bytes of the additional data besides the CID: 8 + 1 + 1 + 1 + 2 + 2 + 6 + 2. */
export const CID_ADDITIONAL_DATA_FIXED_LENGTH = 23;

/**
 * The additional data of section 5:
 *
 *   seq_num_placeholder (8 × 0xff) ‖ tls12_cid ‖ cid_length ‖ tls12_cid ‖ DTLSCiphertext.version ‖
 *   epoch ‖ sequence_number ‖ cid ‖ length
 *
 * `length` is length_of_DTLSInnerPlaintext for AEAD suites (section 5.3) and for the MAC of
 * MAC-then-encrypt (section 5.1, where content ‖ real_type ‖ zeros follow); it is
 * DTLSCiphertext.length for encrypt-then-MAC (section 5.2, where IV ‖ ENC(...) follow).
 * The placeholder and the doubled tls12_cid make this prefix differ from every 13-byte
 * RFC 5246 additional data, so no record can be cut over from one format to the other.
 */
export function cidAdditionalData(version: number, epoch: number, seq: number, cid: Buffer, length: number): Buffer {
  if (cid.length > MAX_CID_LENGTH) throw new RangeError(`cid of ${cid.length} bytes`);
  const out = Buffer.allocUnsafe(CID_ADDITIONAL_DATA_FIXED_LENGTH + cid.length);
  out.fill(0xff, 0, 8);
  out[8] = ContentType.tls12_cid;
  out[9] = cid.length;
  out[10] = ContentType.tls12_cid;
  out.writeUInt16BE(version, 11);
  writeSeqNum(out, 13, epoch, seq);
  cid.copy(out, 21);
  out.writeUInt16BE(length, 21 + cid.length);
  return out;
}
