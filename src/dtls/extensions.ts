/** Hello extensions (RFC 5246 7.4.1.4) and the few this server reads or writes. */

import { ExtensionType } from './constants.js';
import { WireReader, decode, malformed, u16, u16ListVector, vector } from './wire.js';

export interface Extension {
  type: number;
  /** extension_data, a view into the message. */
  data: Buffer;
}

/**
 * Parses the extension list that follows the 2-byte extensions length (pass that list, not the
 * length). An empty buffer is an empty list, which also stands for an absent block. Repeated
 * types are rejected: RFC 5246 7.4.1.4 allows at most one extension of each type.
 */
export function parseExtensions(buf: Buffer): Extension[] | undefined {
  return decode(buf, (r) => {
    const out: Extension[] = [];
    const seen = new Set<number>();
    while (r.remaining > 0) {
      const type = r.u16();
      if (seen.has(type)) malformed();
      seen.add(type);
      out.push({ type, data: r.vector(2, 0, 0xffff) });
    }
    return out;
  });
}

/**
 * The extensions block with its 2-byte length. With `omitIfEmpty`, an empty list yields no bytes
 * at all, the form hellos use when they carry no extension.
 */
export function encodeExtensions(exts: readonly Extension[], omitIfEmpty = false): Buffer {
  if (exts.length === 0 && omitIfEmpty) return Buffer.alloc(0);
  const parts = exts.map((e) => Buffer.concat([u16(e.type), vector(2, e.data, 0, 0xffff, 'extension_data')]));
  return vector(2, Buffer.concat(parts), 0, 0xffff, 'extensions');
}

/**
 * The optional extensions block that ends a ClientHello or ServerHello (RFC 5246 7.4.1.2):
 * no bytes left means no extensions; otherwise the block must fill the rest of the message.
 */
export function readHelloExtensions(r: WireReader): Extension[] {
  if (r.remaining === 0) return [];
  const exts = parseExtensions(r.vector(2, 0, 0xffff));
  if (!exts) malformed();
  return exts;
}

export function findExtension(exts: readonly Extension[], type: number): Extension | undefined {
  return exts.find((e) => e.type === type);
}

/** supported_groups (RFC 8422 5.1.1): NamedGroup named_group_list<2..2^16-1>. */
export function parseSupportedGroups(data: Buffer): number[] | undefined {
  return decode(data, (r) => r.u16List(2, 2, 0xffff));
}

export function encodeSupportedGroups(groups: readonly number[]): Extension {
  return { type: ExtensionType.supported_groups, data: u16ListVector(2, groups, 2, 0xffff, 'named_group_list') };
}

/** ec_point_formats (RFC 8422 5.1.2): ECPointFormat ec_point_format_list<1..2^8-1>. */
export function parseEcPointFormats(data: Buffer): number[] | undefined {
  return decode(data, (r) => r.u8List(1, 0xff));
}

export function encodeEcPointFormats(formats: readonly number[]): Extension {
  return { type: ExtensionType.ec_point_formats, data: vector(1, Buffer.from(formats), 1, 0xff, 'ec_point_format_list') };
}

/** renegotiation_info (RFC 5746 3.2): opaque renegotiated_connection<0..255>; empty on a first handshake. */
export function parseRenegotiationInfo(data: Buffer): Buffer | undefined {
  return decode(data, (r) => r.vector(1, 0, 0xff));
}

export function encodeRenegotiationInfo(renegotiatedConnection: Buffer = Buffer.alloc(0)): Extension {
  return {
    type: ExtensionType.renegotiation_info,
    data: vector(1, renegotiatedConnection, 0, 0xff, 'renegotiated_connection'),
  };
}

/**
 * Flag extensions whose extension_data must be empty: extended_master_secret (RFC 7627 5.1)
 * and encrypt_then_mac (RFC 7366 2). True when present and well formed, false when absent,
 * undefined when present with data (a peer error the caller answers with decode_error).
 */
export function parseFlagExtension(exts: readonly Extension[], type: number): boolean | undefined {
  const e = findExtension(exts, type);
  if (!e) return false;
  return e.data.length === 0 ? true : undefined;
}

export function encodeFlagExtension(type: number): Extension {
  return { type, data: Buffer.alloc(0) };
}
