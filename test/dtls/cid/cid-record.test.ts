/** tls12_cid record framing (RFC 9146 section 4); expected bytes written from the RFC's struct. */
import { describe, expect, it } from 'vitest';
import { ContentType, DTLS_1_2 } from '../../../src/dtls/constants.js';
import { encodeCidRecord, parseCidRecords, peekCid } from '../../../src/dtls/cid-record.js';
import { parseRecords } from '../../../src/dtls/record.js';
import { hex } from '../codecs/flights.js';

// outer_type(25) version epoch sequence_number cid[6] length enc_content
const CID_RECORD = hex('19 fefd 0001 000000000005 a1b2c3d4e5f6 0004 deadbeef');
// An RFC 6347 record: a ChangeCipherSpec in epoch 0.
const PLAIN_RECORD = hex('14 fefd 0000 000000000003 0001 01');

describe('encodeCidRecord', () => {
  it('puts the CID between the sequence number and the length', () => {
    expect(encodeCidRecord(DTLS_1_2, 1, 5, hex('a1b2c3d4e5f6'), hex('deadbeef'))).toEqual(CID_RECORD);
  });
});

describe('parseCidRecords', () => {
  it('reads a tls12_cid record with the server CID length', () => {
    const { records, malformed } = parseCidRecords(CID_RECORD, 6);
    expect(malformed).toBe(false);
    expect(records).toEqual([
      { type: ContentType.tls12_cid, version: DTLS_1_2, epoch: 1, sequenceNumber: 5, cid: hex('a1b2c3d4e5f6'), fragment: hex('deadbeef') },
    ]);
    expect(records[0]!.cid!.buffer).toBe(CID_RECORD.buffer); // a view, not a copy
  });

  it('mixes plain and CID records in one datagram, in order', () => {
    const datagram = Buffer.concat([PLAIN_RECORD, CID_RECORD, PLAIN_RECORD]);
    const { records, malformed } = parseCidRecords(datagram, 6);
    expect(malformed).toBe(false);
    expect(records.map((r) => [r.type, r.cid?.toString('hex'), r.fragment.toString('hex')])).toEqual([
      [20, undefined, '01'],
      [25, 'a1b2c3d4e5f6', 'deadbeef'],
      [20, undefined, '01'],
    ]);
  });

  it('keeps the records before a truncation and flags it, at every length', () => {
    const datagram = Buffer.concat([PLAIN_RECORD, CID_RECORD]);
    const ends = [PLAIN_RECORD.length, datagram.length];
    for (let n = 0; n <= datagram.length; n++) {
      const { records, malformed } = parseCidRecords(Buffer.from(datagram.subarray(0, n)), 6);
      expect(records, `length ${n}`).toHaveLength(ends.filter((e) => e <= n).length);
      expect(malformed, `length ${n}`).toBe(n !== 0 && !ends.includes(n));
    }
  });

  it('with another CID length the same bytes do not parse as one record (the length is the server’s)', () => {
    expect(parseCidRecords(CID_RECORD, 4).malformed).toBe(true);
  });

  it('with CID length 0 is parseRecords', () => {
    const datagram = Buffer.concat([PLAIN_RECORD, CID_RECORD]);
    expect(parseCidRecords(datagram, 0)).toEqual(parseRecords(datagram));
  });

  it('rejects an oversized length field without reading it', () => {
    const big = hex('19 fefd 0001 000000000005 a1b2c3d4e5f6 ffff');
    expect(parseCidRecords(Buffer.concat([big, Buffer.alloc(0xffff)]), 6)).toEqual({ records: [], malformed: true });
  });
});

describe('peekCid', () => {
  it('returns the CID of a leading tls12_cid record, nothing for other records', () => {
    expect(peekCid(CID_RECORD, 6)).toEqual(hex('a1b2c3d4e5f6'));
    expect(peekCid(PLAIN_RECORD, 6)).toBeUndefined();
    expect(peekCid(CID_RECORD.subarray(0, 12), 6)).toBeUndefined();
    expect(peekCid(CID_RECORD, 0)).toBeUndefined();
  });
});
