/**
 * The 13 bytes that every suite authenticates ahead of the content:
 * seq_num (epoch(2) ‖ sequence_number(6), RFC 6347 4.1.2.1) ‖ type(1) ‖ version(2) ‖ length(2).
 * It is the AEAD additional_data of RFC 5246 6.2.3.3 and the MAC header of RFC 5246 6.2.3.1.
 */
export const ADDITIONAL_DATA_LENGTH = 13;

const TWO_POW_32 = 0x1_0000_0000;

/** Writes epoch(2) ‖ seq(6) at `offset`; seq is a 48-bit integer held in a JS number. */
export function writeSeqNum(target: Buffer, offset: number, epoch: number, seq: number): void {
  // Split by hand: writeUIntBE(…, 6) is slower and this is on every record.
  const high = Math.floor(seq / TWO_POW_32);
  target.writeUInt16BE(epoch & 0xffff, offset);
  target.writeUInt16BE(high & 0xffff, offset + 2);
  target.writeUInt32BE(seq >>> 0, offset + 4);
}

export function writeAdditionalData(
  target: Buffer,
  epoch: number,
  seq: number,
  type: number,
  version: number,
  length: number,
): void {
  writeSeqNum(target, 0, epoch, seq);
  target[8] = type;
  target.writeUInt16BE(version & 0xffff, 9);
  target.writeUInt16BE(length, 11);
}
