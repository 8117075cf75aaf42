/**
 * The CoAP codec (src/coap/message.ts) against RFC 7252's own examples (Appendix A, figures 16
 * and 17; section 3.1's option encoding) and against node-coap's codec (coap-packet), an
 * independent implementation; and the parser's promise: never a throw, undefined for a format error.
 */
import fc from 'fast-check';
import { generate, parse } from 'coap-packet';
import { describe, expect, it } from 'vitest';
import { encodeMessage, MessageType, parseMessage } from '../../src/coap/message.js';
import { decodeBlock, encodeBlock } from '../../src/coap/options.js';

describe('CoAP message codec', () => {
  it('parses RFC 7252 figure 16: CON [0x7d34] GET /temperature', () => {
    const bytes = Buffer.concat([Buffer.from([0x40, 0x01, 0x7d, 0x34, 0xbb]), Buffer.from('temperature')]);
    const m = parseMessage(bytes)!;
    expect(m.type).toBe(MessageType.CON);
    expect(m.code).toBe(0x01);
    expect(m.messageId).toBe(0x7d34);
    expect(m.token.length).toBe(0);
    expect(m.options.map((o) => [o.number, o.value.toString()])).toEqual([[11, 'temperature']]);
  });

  it('encodes RFC 7252 figure 16\'s answer: ACK [0x7d34] 2.05 "22.3 C"', () => {
    const out = encodeMessage(MessageType.ACK, 0x45, 0x7d34, Buffer.alloc(0), [], Buffer.from('22.3 C'));
    expect(out.toString('hex')).toBe('60457d34ff' + Buffer.from('22.3 C').toString('hex'));
  });

  it('encodes extended option deltas and lengths (RFC 7252 3.1: 13 → one byte, 269 → two bytes)', () => {
    const opts = [
      { number: 11, value: Buffer.alloc(13, 0x61) }, // delta 11, length 13: nibble 13 + byte 0
      { number: 292, value: Buffer.alloc(1, 0x01) }, // delta 281: nibble 14 + 0x000c
    ];
    const out = encodeMessage(MessageType.NON, 0x01, 1, Buffer.from([0xaa]), opts, undefined);
    expect(out.subarray(0, 8).toString('hex')).toBe('51010001aa' + 'bd00' + '61');
    expect(out.subarray(5 + 2 + 13).toString('hex')).toBe('e1000c01');
    const back = parse(out);
    expect(back.options.map((o) => Number(o.name === 'Uri-Path' ? 11 : o.name))).toEqual([11, 292]);
  });

  it('refuses format errors with undefined', () => {
    const bad = [
      '', '40', '400100', // shorter than the header
      '00010001', // version 0
      '49010001' + '00'.repeat(9), // TKL 9
      '4f010001' + '00'.repeat(15), // TKL 15
      '40010001f0', // option delta nibble 15
      '400100010f', // option length nibble 15
      '40010001b3616263ff', // marker with nothing behind it
      '40010001b361', // option longer than the datagram
      '40010001d0', // extended delta byte missing
      '4000000100', // an Empty message with a byte after the header
    ];
    for (const hex of bad) expect(parseMessage(Buffer.from(hex, 'hex')), hex).toBeUndefined();
  });

  it('never throws, and reads what coap-packet writes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (a) => {
      parseMessage(Buffer.from(a));
    }), { numRuns: 2000 });
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 0xffff }),
      fc.uint8Array({ maxLength: 8 }),
      fc.array(fc.string({ maxLength: 300 }), { maxLength: 4 }),
      fc.uint8Array({ minLength: 1, maxLength: 100 }),
      (messageId, token, path, payload) => {
        const bytes = generate({ messageId, token: Buffer.from(token), code: 'GET', confirmable: true, options: path.map((p) => ({ name: 'Uri-Path', value: Buffer.from(p) })), payload: Buffer.from(payload) });
        const m = parseMessage(bytes)!;
        expect(m.messageId).toBe(messageId);
        expect(m.token.equals(Buffer.from(token))).toBe(true);
        expect(m.options.map((o) => o.value.toString())).toEqual(path);
        expect(m.payload.equals(Buffer.from(payload))).toBe(true);
        const again = encodeMessage(m.type, m.code, m.messageId, m.token, m.options, m.payload);
        expect(again.equals(bytes)).toBe(true);
      },
    ), { numRuns: 300 });
  });

  it('encodes Block options as RFC 7959 2.2 lays them out (NUM, M, SZX)', () => {
    expect(encodeBlock(0, true, 2).toString('hex')).toBe('0a');
    expect(encodeBlock(1, false, 6).toString('hex')).toBe('16');
    expect(encodeBlock(0xfffff, false, 6).toString('hex')).toBe('fffff6');
    expect(decodeBlock(Buffer.from('fffff6', 'hex'))).toEqual({ num: 0xfffff, more: false, szx: 6 });
    expect(decodeBlock(Buffer.from('07', 'hex'))).toBeUndefined(); // SZX 7 is reserved
    expect(decodeBlock(Buffer.from('01000000', 'hex'))).toBeUndefined(); // longer than 3 bytes
  });
});
