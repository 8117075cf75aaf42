/**
 * tls12_cid records sealed and opened through a suite that takes the caller's additional data.
 * For the known answer the suite is AES-128-GCM as RFC 5288 builds it for DTLS (nonce =
 * fixed_iv(4) ‖ epoch ‖ seq, the 8 explicit bytes leading the fragment), written in the test, and
 * the expected record is computed from the RFC 9146 fields written out by hand; then every suite
 * of the server carries CID records the same way.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AlertDescription, ContentType, DTLS_1_2 } from '../../../src/dtls/constants.js';
import { CIPHER_SUITES } from '../../../src/dtls/ciphers/index.js';
import { encodeConnectionIdExtension } from '../../../src/dtls/cid.js';
import { CidFactory } from '../../../src/dtls/cid-factory.js';
import { clientCidFromServerHello, serverCidForClientHello } from '../../../src/dtls/cid-negotiation.js';
import { openCidRecord, sealCidRecord } from '../../../src/dtls/cid-protection.js';
import type { RecordProtection } from '../../../src/dtls/ciphers/types.js';
import { parseCidRecords } from '../../../src/dtls/cid-record.js';
import { hex } from '../codecs/flights.js';

const KEY = hex('000102030405060708090a0b0c0d0e0f');
const FIXED_IV = hex('a0a1a2a3');

function nonce(epoch: number, seq: number): Buffer {
  const n = Buffer.alloc(12);
  FIXED_IV.copy(n);
  n.writeUInt16BE(epoch, 4);
  n.writeUIntBE(seq, 6, 6);
  return n;
}

const gcm: RecordProtection = {
  seal(_type, _version, epoch, seq, plaintext, ad) {
    const c = createCipheriv('aes-128-gcm', KEY, nonce(epoch, seq));
    c.setAAD(ad!(plaintext.length));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([nonce(epoch, seq).subarray(4), ct, c.getAuthTag()]);
  },
  open(_type, _version, _epoch, _seq, fragment, ad) {
    if (fragment.length < 24) return undefined;
    const n = Buffer.concat([FIXED_IV, fragment.subarray(0, 8)]);
    const ct = fragment.subarray(8, fragment.length - 16);
    try {
      const d = createDecipheriv('aes-128-gcm', KEY, n);
      d.setAAD(ad!(ct.length));
      d.setAuthTag(fragment.subarray(fragment.length - 16));
      return Buffer.concat([d.update(ct), d.final()]);
    } catch {
      return undefined;
    }
  },
};

const CID = hex('c1c2c3c4c5c6');
const sealed = () =>
  sealCidRecord(gcm, { version: DTLS_1_2, epoch: 1, seq: 7, cid: CID, type: ContentType.application_data, content: Buffer.from('GET'), padding: 2 });

describe('sealCidRecord', () => {
  it('is header with CID, then GCM of content ‖ real type ‖ zeros under the section 5 additional data', () => {
    const inner = hex('474554 17 0000'); // "GET", application_data, two zeros
    const ad = hex(`ffffffffffffffff 19 06 19 fefd 0001 000000000007 c1c2c3c4c5c6 0006`);
    const c = createCipheriv('aes-128-gcm', KEY, hex('a0a1a2a3 0001 000000000007'));
    c.setAAD(ad);
    const encContent = Buffer.concat([hex('0001000000000007'), c.update(inner), c.final(), c.getAuthTag()]);
    const expected = Buffer.concat([hex('19 fefd 0001 000000000007 c1c2c3c4c5c6'), hex('001e'), encContent]);
    expect(encContent.length).toBe(8 + 6 + 16); // explicit nonce, inner plaintext, tag
    expect(sealed()).toEqual(expected);
  });
});

describe('openCidRecord', () => {
  const record = () => parseCidRecords(sealed(), 6).records[0]!;

  it('returns the real type and content', () => {
    expect(openCidRecord(gcm, record(), CID)).toEqual({ type: ContentType.application_data, content: Buffer.from('GET') });
  });

  it('refuses another CID than ours, and a CID changed on the way (the additional data covers it)', () => {
    expect(openCidRecord(gcm, record(), hex('c1c2c3c4c5c7'))).toBeUndefined();
    const wire = sealed();
    wire[16]! ^= 1; // last CID byte
    const changed = parseCidRecords(wire, 6).records[0]!;
    expect(openCidRecord(gcm, changed, changed.cid!)).toBeUndefined();
  });

  it('refuses a changed epoch, sequence number or version (all in the additional data)', () => {
    for (const at of [3, 4, 10, 1]) {
      const wire = sealed();
      wire[at]! ^= 1;
      const r = parseCidRecords(wire, 6).records[0]!;
      expect(openCidRecord(gcm, r, CID), `byte ${at}`).toBeUndefined();
    }
  });

  it('refuses a record that decrypts to zeros only (no real type)', () => {
    const zeros = Buffer.alloc(5);
    const encContent = gcm.seal(25, DTLS_1_2, 1, 8, zeros, (length) =>
      hex(`ffffffffffffffff 19 06 19 fefd 0001 000000000008 c1c2c3c4c5c6 ${length.toString(16).padStart(4, '0')}`),
    );
    const wire = Buffer.concat([hex('19 fefd 0001 000000000008 c1c2c3c4c5c6'), hex(encContent.length.toString(16).padStart(4, '0')), encContent]);
    expect(openCidRecord(gcm, parseCidRecords(wire, 6).records[0]!, CID)).toBeUndefined();
  });

  it('ignores records that are not tls12_cid', () => {
    const plain = parseCidRecords(hex('17 fefd 0001 000000000001 0001 00'), 6).records[0]!;
    expect(openCidRecord(gcm, plain, CID)).toBeUndefined();
  });
});

describe('CID negotiation (RFC 9146 section 3)', () => {
  const ext = (cid: string) => encodeConnectionIdExtension(hex(cid));

  it('client: each side writes the CID the other asked for; empty means plain records that way', () => {
    expect(clientCidFromServerHello(hex('aa'), [ext('b1b2b3b4b5b6')])).toEqual({ ok: true, use: { readCid: hex('aa'), writeCid: hex('b1b2b3b4b5b6') } });
    expect(clientCidFromServerHello(Buffer.alloc(0), [ext('b1b2b3b4b5b6')])).toEqual({ ok: true, use: { writeCid: hex('b1b2b3b4b5b6') } });
    expect(clientCidFromServerHello(hex('aa'), [ext('')])).toEqual({ ok: true, use: { readCid: hex('aa') } });
    expect(clientCidFromServerHello(hex('aa'), [])).toEqual({ ok: true, use: {} });
  });

  it('client: an extension it never offered, or a malformed one, is an alert', () => {
    expect(clientCidFromServerHello(undefined, [ext('b1')])).toEqual({ ok: false, alert: AlertDescription.unsupported_extension });
    expect(clientCidFromServerHello(hex('aa'), [{ type: 54, data: hex('05 b1') }])).toEqual({ ok: false, alert: AlertDescription.decode_error });
  });

  it('server: answers an offer with a fresh CID of its length, and nothing without an offer or with CID off', () => {
    const factory = new CidFactory({ length: 6 });
    const r = serverCidForClientHello([ext('')], factory);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.use.readCid).toHaveLength(6);
    expect(r.use.writeCid).toBeUndefined();
    expect(r.extension).toEqual(encodeConnectionIdExtension(r.use.readCid!));
    expect(serverCidForClientHello([], factory)).toEqual({ ok: true, use: {} });
    expect(serverCidForClientHello([ext('aa')], undefined)).toEqual({ ok: true, use: {} });
    expect(serverCidForClientHello([{ type: 54, data: hex('') }], factory)).toEqual({ ok: false, alert: AlertDescription.decode_error });
  });

  it('client and server agree: one’s write CID is the other’s read CID', () => {
    const offered = hex('d1d2');
    const server = serverCidForClientHello([encodeConnectionIdExtension(offered)], new CidFactory({ length: 6 }));
    if (!server.ok) throw new Error('server refused');
    const client = clientCidFromServerHello(offered, [server.extension!]);
    if (!client.ok) throw new Error('client refused');
    expect(client.use.writeCid).toEqual(server.use.readCid);
    expect(client.use.readCid).toEqual(server.use.writeCid);
  });
});

describe('every suite of the server carries tls12_cid records', () => {
  const variants = [...CIPHER_SUITES.values()].flatMap((suite) =>
    suite.aead ? [{ suite, encryptThenMac: false }] : [{ suite, encryptThenMac: true }, { suite, encryptThenMac: false }],
  );

  it.each(variants.map((v) => [`${v.suite.name}${v.suite.aead ? '' : v.encryptThenMac ? ' (EtM)' : ' (MtE)'}`, v] as const))(
    '%s',
    (_label, { suite, encryptThenMac }) => {
      const keys = { macKey: randomBytes(suite.macKeyLength), encKey: randomBytes(suite.encKeyLength), fixedIv: randomBytes(suite.fixedIvLength) };
      const sender = suite.createProtection(keys, { encryptThenMac });
      const receiver = suite.createProtection(keys, { encryptThenMac });
      const content = Buffer.from('a CoAP request');
      const wire = sealCidRecord(sender, { version: DTLS_1_2, epoch: 1, seq: 3, cid: CID, type: ContentType.application_data, content, padding: 5 });
      const record = parseCidRecords(wire, 6).records[0]!;
      expect(openCidRecord(receiver, record, CID)).toEqual({ type: ContentType.application_data, content });
      // Not readable as an RFC 6347 record: the 13-byte additional data is not the one it was sealed under.
      expect(receiver.open(ContentType.application_data, DTLS_1_2, 1, 3, record.fragment)).toBeUndefined();
      expect(receiver.open(ContentType.tls12_cid, DTLS_1_2, 1, 3, record.fragment)).toBeUndefined();
      // A CID changed on the way does not authenticate.
      const changed = Buffer.from(wire);
      changed[11]! ^= 0x80;
      const bad = parseCidRecords(changed, 6).records[0]!;
      expect(openCidRecord(receiver, bad, bad.cid!)).toBeUndefined();
    },
  );
});
