/**
 * The test client's own RFC 9146 code (src/dtls/client-cid.ts) against the layout worked out
 * by hand from sections 4 and 5 (the same vector as cid.test.ts, with the client's first
 * sequence number). The protection here is a stand-in that records what the suite would be
 * given: the additional data and the DTLSInnerPlaintext.
 */
import { describe, expect, it } from 'vitest';
import type { AdditionalData, RecordProtection } from '../../../src/dtls/ciphers/types.js';
import { ClientCid } from '../../../src/dtls/client-cid.js';

const hex = (s: string) => Buffer.from(s.replace(/--[^\n]*/g, '').replace(/\s+/g, ''), 'hex');

function recordingProtection() {
  const seen: { ad?: Buffer; plaintext?: Buffer } = {};
  const protection: RecordProtection = {
    seal(_type, _version, _epoch, _seq, plaintext, additionalData?: AdditionalData) {
      seen.plaintext = Buffer.from(plaintext);
      seen.ad = additionalData?.(plaintext.length);
      return Buffer.from(plaintext); // "encryption" that leaves the bytes as they are
    },
    open: (_type, _version, _epoch, _seq, fragment) => fragment,
  };
  return { protection, seen };
}

describe('ClientCid (the test client, written from RFC 9146)', () => {
  it('seals with section 5 additional data and section 4 framing', () => {
    const cid = new ClientCid(Buffer.alloc(0));
    expect(cid.settle([{ type: 54, data: hex('06 a1 b2 c3 d4 e5 f6') }])).toBeUndefined();
    const { protection, seen } = recordingProtection();
    const content = Buffer.alloc(32, 0x42);
    const record = cid.seal(protection, 0xfefd, 1, 23, content);
    expect(seen.ad).toEqual(hex(`
      ff ff ff ff ff ff ff ff   -- seq_num_placeholder
      19 06 19                  -- tls12_cid, cid_length, tls12_cid
      fe fd                     -- version
      00 01                     -- epoch
      00 00 00 00 00 00         -- sequence_number: the client's first in epoch 1
      a1 b2 c3 d4 e5 f6         -- cid
      00 21                     -- length_of_DTLSInnerPlaintext: 32 + 1
    `));
    expect(seen.plaintext).toEqual(Buffer.concat([content, Buffer.from([23])])); // content ‖ real_type, no padding
    expect(record.subarray(0, 19)).toEqual(hex('19 fe fd 00 01 00 00 00 00 00 00 a1 b2 c3 d4 e5 f6 00 21'));
  });

  it('reads its own CID out of the server\'s records and drops another CID or a replay', () => {
    const cid = new ClientCid(hex('0102'));
    cid.settle([{ type: 54, data: hex('00') }]); // the server wants no CID from us
    expect(cid.sendsCid).toBe(false);
    const { protection } = recordingProtection();
    const record = hex('19 fe fd 00 01 00 00 00 00 00 07 01 02 00 04 68 69 17 00'); // "hi", application_data, one byte of padding
    const [r] = cid.splitRecords(record);
    expect(r!.cid).toEqual(hex('0102'));
    expect(cid.open(protection, r!)).toEqual({ type: 23, content: Buffer.from('hi') });
    expect(cid.open(protection, r!)).toBeUndefined(); // the same sequence number again
    const [other] = cid.splitRecords(hex('19 fe fd 00 01 00 00 00 00 00 08 09 09 00 04 68 69 17 00'));
    expect(cid.open(protection, other!)).toBeUndefined();
  });

  it('refuses a malformed connection_id answer', () => {
    expect(new ClientCid(Buffer.alloc(0)).settle([{ type: 54, data: hex('05 01') }])).toMatch(/malformed/);
  });
});
