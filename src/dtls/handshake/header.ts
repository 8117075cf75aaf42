/** DTLS handshake message header and fragmentation (RFC 6347 section 4.2.2 and 4.2.3). */

import { HANDSHAKE_HEADER_LENGTH } from '../constants.js';
import { WireReader, decode, malformed } from '../wire.js';

export interface HandshakeFragment {
  msgType: number;
  /** Length of the whole message body, not of this fragment. */
  length: number;
  messageSeq: number;
  fragmentOffset: number;
  fragmentLength: number;
  /** This fragment's bytes: a view into the record, `fragmentLength` long. */
  body: Buffer;
}

function readFragment(r: WireReader): HandshakeFragment {
  const msgType = r.u8();
  const length = r.u24();
  const messageSeq = r.u16();
  const fragmentOffset = r.u24();
  const fragmentLength = r.u24();
  // A fragment that reaches past its message would make a reassembler write out of bounds.
  if (fragmentOffset + fragmentLength > length) malformed();
  return { msgType, length, messageSeq, fragmentOffset, fragmentLength, body: r.bytes(fragmentLength) };
}

/**
 * All handshake fragments in one record's plaintext (a record may hold several, RFC 6347
 * 4.2.3). Undefined if any is malformed, or if the record is empty (RFC 5246 6.2.1 forbids
 * zero-length handshake fragments at the record layer).
 */
export function parseHandshakeFragments(recordFragment: Buffer): HandshakeFragment[] | undefined {
  if (recordFragment.length === 0) return undefined;
  return decode(recordFragment, (r) => {
    const out: HandshakeFragment[] = [];
    while (r.remaining > 0) out.push(readFragment(r));
    return out;
  });
}

/** Writes a 12-byte handshake header at `offset`; returns the offset after it. */
export function writeHandshakeHeader(
  target: Buffer,
  offset: number,
  msgType: number,
  length: number,
  messageSeq: number,
  fragmentOffset: number,
  fragmentLength: number,
): number {
  if (fragmentOffset + fragmentLength > length) throw new RangeError('handshake fragment past its message');
  offset = target.writeUInt8(msgType, offset);
  offset = target.writeUIntBE(length, offset, 3);
  offset = target.writeUInt16BE(messageSeq, offset);
  offset = target.writeUIntBE(fragmentOffset, offset, 3);
  return target.writeUIntBE(fragmentLength, offset, 3);
}

function encodeFragment(msgType: number, messageSeq: number, body: Buffer, offset: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(HANDSHAKE_HEADER_LENGTH + end - offset);
  const at = writeHandshakeHeader(out, 0, msgType, body.length, messageSeq, offset, end - offset);
  body.copy(out, at, offset, end);
  return out;
}

/**
 * One whole message: header with fragment_offset 0 and fragment_length = length. This is also
 * the form that enters the handshake hash (RFC 6347 4.2.6), however the message travelled.
 */
export function encodeHandshake(msgType: number, messageSeq: number, body: Buffer): Buffer {
  return encodeFragment(msgType, messageSeq, body, 0, body.length);
}

/**
 * Splits a message into fragments whose bodies hold at most `maxFragmentBody` bytes each
 * (RFC 6347 4.2.3), every one with the full header. An empty body gives one empty fragment.
 */
export function fragmentHandshake(msgType: number, messageSeq: number, body: Buffer, maxFragmentBody: number): Buffer[] {
  if (!Number.isInteger(maxFragmentBody) || maxFragmentBody < 1) {
    throw new RangeError(`maxFragmentBody ${maxFragmentBody} must be a positive integer`);
  }
  if (body.length === 0) return [encodeHandshake(msgType, messageSeq, body)];
  const out: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += maxFragmentBody) {
    out.push(encodeFragment(msgType, messageSeq, body, offset, Math.min(body.length, offset + maxFragmentBody)));
  }
  return out;
}
