/**
 * Known answers for the cluster's forwarding messages (docs/cluster.md). The expected bytes are
 * laid out by hand from the table in docs/cluster.md, and the keys and MACs come from OpenSSL's
 * command line, not from node:crypto or the code under test:
 *
 *   openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:000102…1f \
 *     -kdfopt salt:"coap-psk cluster v1" -kdfopt info:forward HKDF
 *   echo -n "$MESSAGE_HEX" | xxd -r -p | openssl dgst -sha256 -mac HMAC -macopt hexkey:$FORWARD_KEY   (first 16 bytes)
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeForwardMessage, deriveClusterKey, encodeForwardMessage, ForwardType, type ForwardMessage,
} from '../../src/cluster/forward-wire.js';

const CLUSTER_KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const FORWARD_KEY_HEX = 'cf9d4a19097d6f9d1b2e2f81cf81a592d2e021d0554d73f3f47c33187fe31a47';
const KEY = Buffer.from(FORWARD_KEY_HEX, 'hex');
const NOW = 1796180400000; // 2026-12-02T03:00:00Z = 0x000001a234b1d780
// A tls12_cid record (content type 25) with a 6-byte CID, as a device would send it.
const RECORD = Buffer.from('19fefd000100000000000a1f2e3d4c5b6a0003aabbcc', 'hex');

const VECTORS: { name: string; msg: ForwardMessage; hex: string }[] = [
  {
    name: 'FORWARD from node 2, device 10.155.0.2:40000',
    msg: { type: ForwardType.FORWARD, senderNode: 2, timestampMs: NOW, device: { address: '10.155.0.2', port: 40000 }, payload: RECORD },
    hex: '01' + '01' + '0002' + '000001a234b1d780' + '04' + '9c40' + '0a9b0002' + RECORD.toString('hex') + 'cca539fa5c743946392217bc2601f317',
  },
  {
    name: 'BACKWARD from node 5, device [2001:db8::42]:5683',
    msg: { type: ForwardType.BACKWARD, senderNode: 5, timestampMs: NOW, device: { address: '2001:db8::42', port: 5683 }, payload: RECORD },
    hex: '01' + '02' + '0005' + '000001a234b1d780' + '06' + '1633' + '20010db8000000000000000000000042' + RECORD.toString('hex') + '64554506b400234baa11005169f5ab10',
  },
  {
    name: 'HELLO from node 1023',
    msg: { type: ForwardType.HELLO, senderNode: 1023, timestampMs: NOW, payload: Buffer.alloc(0) },
    hex: '01' + '03' + '03ff' + '000001a234b1d780' + '00' + '0000' + 'f9541c82e6e3a4450b382f9140dfa746',
  },
];

describe('cluster forwarding messages', () => {
  it('derives the forward key from the cluster key with HKDF-SHA256 (OpenSSL\'s answer)', () => {
    expect(deriveClusterKey(CLUSTER_KEY, 'forward').toString('hex')).toBe(FORWARD_KEY_HEX);
    expect(deriveClusterKey(CLUSTER_KEY, 'cid-route').equals(KEY)).toBe(false);
    expect(() => deriveClusterKey(CLUSTER_KEY.subarray(0, 31), 'forward')).toThrow(RangeError);
  });

  it.each(VECTORS)('encodes and decodes $name', ({ msg, hex }) => {
    expect(encodeForwardMessage(KEY, msg).toString('hex')).toBe(hex);
    const decoded = decodeForwardMessage(KEY, Buffer.from(hex, 'hex'), { nowMs: NOW });
    expect(decoded).toEqual({ ...msg, payload: msg.payload });
  });

  it('refuses every message with one bit changed, cut short or lengthened, or under another key', () => {
    const other = deriveClusterKey(Buffer.alloc(32, 7), 'forward');
    for (const { hex } of VECTORS) {
      const good = Buffer.from(hex, 'hex');
      expect(decodeForwardMessage(other, good, { nowMs: NOW })).toBeUndefined();
      for (let bit = 0; bit < good.length * 8; bit++) {
        const bad = Buffer.from(good);
        bad[bit >> 3] ^= 1 << (bit & 7);
        expect(decodeForwardMessage(KEY, bad, { nowMs: NOW }), `bit ${bit}`).toBeUndefined();
      }
      for (let n = 0; n < good.length; n++) expect(decodeForwardMessage(KEY, good.subarray(0, n), { nowMs: NOW })).toBeUndefined();
      expect(decodeForwardMessage(KEY, Buffer.concat([good, Buffer.from([0])]), { nowMs: NOW })).toBeUndefined();
    }
  });

  it('refuses a message older or newer than the freshness window (5 s by default)', () => {
    const bytes = Buffer.from(VECTORS[0].hex, 'hex');
    expect(decodeForwardMessage(KEY, bytes, { nowMs: NOW + 5000 })).toBeDefined();
    expect(decodeForwardMessage(KEY, bytes, { nowMs: NOW + 5001 })).toBeUndefined();
    expect(decodeForwardMessage(KEY, bytes, { nowMs: NOW - 5001 })).toBeUndefined();
    expect(decodeForwardMessage(KEY, bytes, { nowMs: NOW + 60_000, freshnessMs: 60_000 })).toBeDefined();
  });

  it('refuses authentic messages whose fields do not fit together', () => {
    const base = VECTORS[0].msg;
    // Made with a correct MAC (as only a holder of the key could), so only the field checks can refuse them.
    const forged = (patch: (b: Buffer) => Buffer) => {
      const body = patch(encodeForwardMessage(KEY, base).subarray(0, -16));
      return Buffer.concat([body, createHmac('sha256', KEY).update(body).digest().subarray(0, 16)]);
    };
    const set = (offset: number, value: number) => (b: Buffer) => {
      const c = Buffer.from(b);
      c[offset] = value;
      return c;
    };
    expect(decodeForwardMessage(KEY, forged((b) => b), { nowMs: NOW })).toBeDefined(); // the forgery itself is sound
    expect(decodeForwardMessage(KEY, forged(set(0, 2)), { nowMs: NOW })).toBeUndefined(); // version 2
    expect(decodeForwardMessage(KEY, forged(set(1, 4)), { nowMs: NOW })).toBeUndefined(); // unknown type
    expect(decodeForwardMessage(KEY, forged(set(1, ForwardType.HELLO)), { nowMs: NOW })).toBeUndefined(); // HELLO with an address
    expect(decodeForwardMessage(KEY, forged(set(12, 0)), { nowMs: NOW })).toBeUndefined(); // FORWARD without one
    expect(decodeForwardMessage(KEY, forged(set(12, 5)), { nowMs: NOW })).toBeUndefined(); // unknown family
    expect(decodeForwardMessage(KEY, forged(set(2, 0x04)), { nowMs: NOW })).toBeUndefined(); // node id 1026 > 1023
  });

  it('refuses values it cannot encode', () => {
    const base = VECTORS[0].msg;
    expect(() => encodeForwardMessage(KEY, { ...base, senderNode: 1024 })).toThrow(RangeError);
    expect(() => encodeForwardMessage(KEY, { ...base, device: { address: 'not-an-ip', port: 1 } })).toThrow(RangeError);
    expect(() => encodeForwardMessage(KEY, { ...base, device: { address: '10.0.0.1', port: 65536 } })).toThrow(RangeError);
    expect(() => encodeForwardMessage(KEY, { ...base, type: ForwardType.HELLO })).toThrow(RangeError);
    expect(() => encodeForwardMessage(KEY, { ...VECTORS[2].msg, payload: RECORD })).toThrow(RangeError);
  });

  it('never throws on arbitrary bytes, and round-trips any valid message', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
      expect(decodeForwardMessage(KEY, Buffer.from(bytes), { nowMs: NOW })).toBeUndefined();
    }), { numRuns: 2000 });
    const device = fc.oneof(fc.ipV4(), fc.ipV6()).chain((address) => fc.record({ address: fc.constant(address), port: fc.integer({ min: 0, max: 65535 }) }));
    fc.assert(fc.property(
      fc.constantFrom(ForwardType.FORWARD, ForwardType.BACKWARD), fc.integer({ min: 0, max: 1023 }), device, fc.uint8Array({ maxLength: 1500 }),
      (type, senderNode, dev, payload) => {
        const msg = { type, senderNode, timestampMs: NOW, device: dev, payload: Buffer.from(payload) };
        const back = decodeForwardMessage(KEY, encodeForwardMessage(KEY, msg), { nowMs: NOW })!;
        expect(back.payload.equals(msg.payload)).toBe(true);
        expect(encodeForwardMessage(KEY, back).equals(encodeForwardMessage(KEY, msg))).toBe(true);
      },
    ), { numRuns: 500 });
  });
});
