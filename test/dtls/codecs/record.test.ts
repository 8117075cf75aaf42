import { describe, expect, it } from 'vitest';
import { ContentType, DTLS_1_2 } from '../../../src/dtls/constants.js';
import { MAX_RECORD_FRAGMENT_LENGTH, encodeRecord, parseRecords, writeRecordHeader } from '../../../src/dtls/record.js';
import { hex, loadFlight } from './flights.js';

// OpenSSL's second flight: ClientKeyExchange, ChangeCipherSpec and the encrypted Finished in one datagram.
const [datagram] = loadFlight('openssl-psk-aes128-ccm8-client-key-exchange');

describe('parseRecords', () => {
  it('splits a real datagram holding three records (RFC 6347 4.1)', () => {
    const { records, malformed } = parseRecords(datagram!);
    expect(malformed).toBe(false);
    expect(records.map((r) => [r.type, r.version, r.epoch, r.sequenceNumber, r.fragment.length])).toEqual([
      [ContentType.handshake, DTLS_1_2, 0, 2, 17],
      [ContentType.change_cipher_spec, DTLS_1_2, 0, 3, 1],
      [ContentType.handshake, DTLS_1_2, 1, 0, 40],
    ]);
    expect(records[1]!.fragment).toEqual(hex('01'));
    // Views, not copies.
    expect(records[0]!.fragment.buffer).toBe(datagram!.buffer);
  });

  it('re-encodes to the same datagram', () => {
    const { records } = parseRecords(datagram!);
    const wire = Buffer.concat(records.map((r) => encodeRecord(r.type, r.version, r.epoch, r.sequenceNumber, r.fragment)));
    expect(wire.equals(datagram!)).toBe(true);
  });

  it('keeps the records before a truncation and flags it, at every length', () => {
    const ends = [13 + 17, 13 + 17 + 14, datagram!.length];
    for (let n = 0; n <= datagram!.length; n++) {
      const { records, malformed } = parseRecords(Buffer.from(datagram!.subarray(0, n)));
      expect(records).toHaveLength(ends.filter((e) => e <= n).length);
      expect(malformed, `length ${n}`).toBe(n !== 0 && !ends.includes(n));
    }
  });

  it('flags trailing garbage but keeps the records', () => {
    const { records, malformed } = parseRecords(Buffer.concat([datagram!, hex('16fefd')]));
    expect(records).toHaveLength(3);
    expect(malformed).toBe(true);
  });

  it('rejects a length over 2^14+2048 even when the bytes are there', () => {
    const ok = encodeRecord(23, DTLS_1_2, 1, 5, Buffer.alloc(MAX_RECORD_FRAGMENT_LENGTH));
    expect(parseRecords(ok).records).toHaveLength(1);
    const big = Buffer.concat([ok, Buffer.alloc(1)]);
    big.writeUInt16BE(MAX_RECORD_FRAGMENT_LENGTH + 1, 11);
    expect(parseRecords(big)).toEqual({ records: [], malformed: true });
  });

  it('carries 48-bit sequence numbers', () => {
    const rec = encodeRecord(23, DTLS_1_2, 0xffff, 2 ** 48 - 1, hex('aa'));
    expect(rec).toEqual(hex('17 fefd ffff ffffffffffff 0001 aa'));
    expect(parseRecords(rec).records[0]).toMatchObject({ epoch: 0xffff, sequenceNumber: 2 ** 48 - 1 });
    expect(() => encodeRecord(23, DTLS_1_2, 0, 2 ** 48, hex('aa'))).toThrow(RangeError);
  });
});

describe('writeRecordHeader', () => {
  it('writes the same header as encodeRecord, at an offset', () => {
    const target = Buffer.alloc(20, 0xee);
    expect(writeRecordHeader(target, 3, 22, DTLS_1_2, 1, 0x010203040506, 300)).toBe(16);
    expect(target).toEqual(hex('eeeeee 16 fefd 0001 010203040506 012c eeeeeeee'));
  });
});
