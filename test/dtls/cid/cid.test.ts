/**
 * Known answers for RFC 9146 (not draft-05). The expected bytes are written out field by field
 * from the RFC's structures (sections 3, 4 and 5), not taken from the code under test.
 */
import { describe, expect, it } from 'vitest';
import { ContentType, DTLS_1_2, ExtensionType } from '../../../src/dtls/constants.js';
import {
  CID_ADDITIONAL_DATA_FIXED_LENGTH,
  cidAdditionalData,
  encodeConnectionIdExtension,
  encodeInnerPlaintext,
  parseConnectionIdExtension,
  parseInnerPlaintext,
} from '../../../src/dtls/cid.js';
import { encodeExtensions, findExtension, parseExtensions } from '../../../src/dtls/extensions.js';
import { hex } from '../codecs/flights.js';

describe('additional data of a tls12_cid record (RFC 9146 section 5)', () => {
  it('lays out placeholder, tls12_cid, cid_length, tls12_cid, version, epoch, seq, cid, length', () => {
    const cid = hex('a1 b2 c3 d4 e5 f6');
    const ad = cidAdditionalData(DTLS_1_2, 1, 0x0a0b0c0d0e0f, cid, 0x0021);
    expect(ad.toString('hex')).toBe(
      hex(`
        ff ff ff ff ff ff ff ff   -- seq_num_placeholder: 8 bytes of 0xff
        19                        -- tls12_cid (25)
        06                        -- cid_length
        19                        -- tls12_cid (25) again
        fe fd                     -- DTLSCiphertext.version: DTLS 1.2
        00 01                     -- epoch
        0a 0b 0c 0d 0e 0f         -- sequence_number (48 bits)
        a1 b2 c3 d4 e5 f6         -- cid
        00 21                     -- length_of_DTLSInnerPlaintext (33)
      `.replace(/--[^\n]*/g, '')).toString('hex'),
    );
    expect(ad.length).toBe(29); // 23 + cid_length, as mbedTLS 3's comment on RFC 9146 also counts
  });

  it('is 23 bytes plus the CID, for the largest sequence number and a 255-byte CID', () => {
    const cid = Buffer.alloc(255, 0x5a);
    const ad = cidAdditionalData(DTLS_1_2, 0xffff, 2 ** 48 - 1, cid, 0x4101);
    expect(CID_ADDITIONAL_DATA_FIXED_LENGTH).toBe(8 + 1 + 1 + 1 + 2 + 2 + 6 + 2);
    expect(ad.length).toBe(23 + 255);
    expect(ad.subarray(8, 11)).toEqual(hex('19 ff 19'));
    expect(ad.subarray(13, 21)).toEqual(hex('ff ff ff ff ff ff ff ff'));
    expect(ad.subarray(21, 21 + 255).equals(cid)).toBe(true);
    expect(ad.subarray(276)).toEqual(hex('41 01'));
  });

  it('differs from the RFC 5246 13-byte additional data in its first bytes, whatever the record', () => {
    // seq_num of RFC 6347 begins with the epoch; 0xffff ff.. is an epoch no one reaches.
    expect(cidAdditionalData(DTLS_1_2, 0, 0, Buffer.alloc(0), 0).subarray(0, 8)).toEqual(Buffer.alloc(8, 0xff));
  });
});

describe('DTLSInnerPlaintext (RFC 9146 section 4)', () => {
  it('is content, then the real type, then zeros', () => {
    expect(encodeInnerPlaintext(Buffer.from('hi'), ContentType.application_data, 3)).toEqual(hex('68 69 17 00 00 00'));
    expect(encodeInnerPlaintext(Buffer.alloc(0), ContentType.alert)).toEqual(hex('15'));
  });

  it('parses back: the real type is the last non-zero byte, zeros inside the content stay', () => {
    expect(parseInnerPlaintext(hex('68 69 17 00 00 00'))).toEqual({ content: Buffer.from('hi'), realType: 23 });
    expect(parseInnerPlaintext(hex('00 00 16'))).toEqual({ content: hex('00 00'), realType: 22 });
    expect(parseInnerPlaintext(hex('15'))).toEqual({ content: Buffer.alloc(0), realType: 21 });
  });

  it('rejects a plaintext with no type (zeros only, or empty) and content over 2^14', () => {
    expect(parseInnerPlaintext(Buffer.alloc(0))).toBeUndefined();
    expect(parseInnerPlaintext(Buffer.alloc(40))).toBeUndefined();
    expect(parseInnerPlaintext(Buffer.concat([Buffer.alloc(2 ** 14 + 1, 1), hex('17')]))).toBeUndefined();
    expect(parseInnerPlaintext(Buffer.concat([Buffer.alloc(2 ** 14, 1), hex('17 00')]))?.content.length).toBe(2 ** 14);
  });

  it('refuses to encode a zero type (it would be read as padding)', () => {
    expect(() => encodeInnerPlaintext(Buffer.from('x'), 0)).toThrow(RangeError);
  });
});

describe('connection_id extension (RFC 9146 section 3)', () => {
  it('is type 54 with struct { opaque cid<0..2^8-1>; }', () => {
    expect(ExtensionType.connection_id).toBe(54);
    const block = encodeExtensions([encodeConnectionIdExtension(hex('aa bb cc'))]);
    expect(block).toEqual(hex('00 08   00 36   00 04   03 aa bb cc'));
    const ext = findExtension(parseExtensions(block.subarray(2))!, 54)!;
    expect(parseConnectionIdExtension(ext.data)).toEqual(hex('aa bb cc'));
  });

  it('an empty CID ("I send CIDs, do not send me one") is one zero byte', () => {
    expect(encodeConnectionIdExtension(Buffer.alloc(0)).data).toEqual(hex('00'));
    expect(parseConnectionIdExtension(hex('00'))).toEqual(Buffer.alloc(0));
  });

  it('rejects truncated, overlong and trailing data', () => {
    expect(parseConnectionIdExtension(Buffer.alloc(0))).toBeUndefined();
    expect(parseConnectionIdExtension(hex('03 aa bb'))).toBeUndefined();
    expect(parseConnectionIdExtension(hex('01 aa bb'))).toBeUndefined();
  });
});
