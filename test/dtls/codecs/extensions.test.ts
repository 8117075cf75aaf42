import { describe, expect, it } from 'vitest';
import { ExtensionType, NamedGroup } from '../../../src/dtls/constants.js';
import {
  encodeEcPointFormats,
  encodeExtensions,
  encodeFlagExtension,
  encodeRenegotiationInfo,
  encodeSupportedGroups,
  findExtension,
  parseEcPointFormats,
  parseExtensions,
  parseFlagExtension,
  parseRenegotiationInfo,
  parseSupportedGroups,
} from '../../../src/dtls/extensions.js';
import { parseClientHello } from '../../../src/dtls/handshake/client-hello.js';
import { expectRejectsTruncationAndTrailing, hex, messageBody } from './flights.js';

/** The extensions block (with its 2-byte length) that ends a captured ClientHello. */
function extensionsBlock(fixture: string): Buffer {
  const body = messageBody(fixture, 1);
  const ch = parseClientHello(body)!;
  const total = ch.extensions.reduce((n, e) => n + 4 + e.data.length, 0);
  return body.subarray(body.length - 2 - total);
}

describe('extensions of real ClientHellos', () => {
  it('OpenSSL (libcoap): supported_groups, ec_point_formats, EMS, encrypt_then_mac, server_name', () => {
    const exts = parseClientHello(messageBody('coap-client-openssl-client-hello', 1))!.extensions;
    const groups = parseSupportedGroups(findExtension(exts, ExtensionType.supported_groups)!.data);
    expect(groups).toEqual([NamedGroup.x25519, NamedGroup.secp256r1, 30, 25, 24]);
    expect(parseEcPointFormats(findExtension(exts, ExtensionType.ec_point_formats)!.data)).toEqual([0, 1, 2]);
    expect(parseFlagExtension(exts, ExtensionType.extended_master_secret)).toBe(true);
    expect(parseFlagExtension(exts, ExtensionType.encrypt_then_mac)).toBe(true);
    expect(parseFlagExtension(exts, ExtensionType.renegotiation_info)).toBe(false); // OpenSSL sends the SCSV instead
    // server_name: list of one host_name "127.0.0.1"
    expect(findExtension(exts, ExtensionType.server_name)!.data.subarray(5).toString()).toBe('127.0.0.1');
  });

  it('GnuTLS: an empty renegotiation_info (RFC 5746 3.4) and its groups', () => {
    const exts = parseClientHello(messageBody('gnutls-cli-client-hello', 1))!.extensions;
    expect(parseRenegotiationInfo(findExtension(exts, ExtensionType.renegotiation_info)!.data)).toEqual(Buffer.alloc(0));
    expect(parseSupportedGroups(findExtension(exts, ExtensionType.supported_groups)!.data)).toEqual([23, 24, 25, 29, 30]);
    expect(parseEcPointFormats(findExtension(exts, ExtensionType.ec_point_formats)!.data)).toEqual([0]);
  });

  for (const fixture of ['coap-client-openssl-client-hello', 'coap-client-gnutls-client-hello', 'gnutls-cli-client-hello']) {
    it(`re-encodes the ${fixture} block to the same bytes, and rejects its truncations`, () => {
      const block = extensionsBlock(fixture);
      const exts = parseExtensions(block.subarray(2))!;
      expect(encodeExtensions(exts).equals(block)).toBe(true);
      // An extension list may legitimately end at any extension boundary.
      const boundaries: number[] = [0];
      for (const e of exts) boundaries.push(boundaries.at(-1)! + 4 + e.data.length);
      const list = block.subarray(2);
      for (let n = 0; n < list.length; n++) {
        const r = parseExtensions(Buffer.from(list.subarray(0, n)));
        if (boundaries.includes(n)) expect(r).toHaveLength(boundaries.indexOf(n));
        else expect(r, `prefix ${n}`).toBeUndefined();
      }
    });
  }

  it('re-encodes typed helpers to the captured bytes', () => {
    const exts = parseClientHello(messageBody('coap-client-openssl-client-hello', 1))!.extensions;
    expect(encodeSupportedGroups([29, 23, 30, 25, 24])).toEqual(findExtension(exts, ExtensionType.supported_groups));
    expect(encodeEcPointFormats([0, 1, 2])).toEqual(findExtension(exts, ExtensionType.ec_point_formats));
    expect(encodeFlagExtension(ExtensionType.extended_master_secret)).toEqual(findExtension(exts, 23));
    const gnutls = parseClientHello(messageBody('gnutls-cli-client-hello', 1))!.extensions;
    expect(encodeRenegotiationInfo()).toEqual(findExtension(gnutls, ExtensionType.renegotiation_info));
  });
});

describe('extension bounds', () => {
  it('encodes the empty list with or without its length', () => {
    expect(encodeExtensions([])).toEqual(hex('0000'));
    expect(encodeExtensions([], true)).toEqual(Buffer.alloc(0));
    expect(parseExtensions(Buffer.alloc(0))).toEqual([]);
  });

  it('rejects repeated extension types (RFC 5246 7.4.1.4)', () => {
    expect(parseExtensions(hex('0017 0000 0016 0000 0017 0000'))).toBeUndefined();
  });

  it('supported_groups: <2..2^16-1>, whole uint16s, nothing after', () => {
    expectRejectsTruncationAndTrailing(parseSupportedGroups, hex('0004 001d 0017'));
    expect(parseSupportedGroups(hex('0000'))).toBeUndefined();
    expect(parseSupportedGroups(hex('0003 001d 00'))).toBeUndefined();
  });

  it('ec_point_formats: <1..2^8-1>', () => {
    expectRejectsTruncationAndTrailing(parseEcPointFormats, hex('0100'));
    expect(parseEcPointFormats(hex('00'))).toBeUndefined();
  });

  it('renegotiation_info: <0..255>', () => {
    expectRejectsTruncationAndTrailing(parseRenegotiationInfo, hex('0c' + 'ab'.repeat(12)), []);
    expect(parseRenegotiationInfo(hex('00'))).toEqual(Buffer.alloc(0));
    expect(() => encodeRenegotiationInfo(Buffer.alloc(256))).toThrow(RangeError);
  });

  it('flag extensions must carry no data', () => {
    expect(parseFlagExtension([{ type: 23, data: hex('00') }], 23)).toBeUndefined();
    expect(parseFlagExtension([{ type: 22, data: Buffer.alloc(0) }], 23)).toBe(false);
  });
});
