/**
 * CoAP option numbers and values (RFC 7252 5.10 and 12.2, RFC 7641, RFC 7959, RFC 9175,
 * RFC 7967), content formats (RFC 7252 12.3), and the uint / Block option encodings.
 */
import type { CoapOption } from './message.js';

export const OPTION = {
  IfMatch: 1,
  UriHost: 3,
  ETag: 4,
  IfNoneMatch: 5,
  Observe: 6,
  UriPort: 7,
  LocationPath: 8,
  UriPath: 11,
  ContentFormat: 12,
  MaxAge: 14,
  UriQuery: 15,
  Accept: 17,
  LocationQuery: 20,
  Block2: 23,
  Block1: 27,
  Size2: 28,
  ProxyUri: 35,
  ProxyScheme: 39,
  Size1: 60,
  Echo: 252,
  NoResponse: 258,
  RequestTag: 292,
} as const;

/** Option names as handlers may give them to `res.setOption` / `req.option` (RFC spelling). */
export const OPTION_NAMES: Readonly<Record<string, number>> = {
  'If-Match': 1,
  'Uri-Host': 3,
  ETag: 4,
  'If-None-Match': 5,
  Observe: 6,
  'Uri-Port': 7,
  'Location-Path': 8,
  'Uri-Path': 11,
  'Content-Format': 12,
  'Max-Age': 14,
  'Uri-Query': 15,
  Accept: 17,
  'Location-Query': 20,
  Block2: 23,
  Block1: 27,
  Size2: 28,
  'Proxy-Uri': 35,
  'Proxy-Scheme': 39,
  Size1: 60,
  Echo: 252,
  'No-Response': 258,
  'Request-Tag': 292,
};

/** Critical options this server understands (RFC 7252 5.4.1: any other critical one in a CON request is 4.02). */
const KNOWN_CRITICAL = new Set<number>([1, 3, 5, 7, 11, 15, 17, 23, 27, 35, 39]);

/** Odd numbers are critical (RFC 7252 5.4.6). */
export function firstUnknownCritical(options: readonly CoapOption[]): number | undefined {
  for (let i = 0; i < options.length; i++) {
    const n = options[i]!.number;
    if ((n & 1) === 1 && !KNOWN_CRITICAL.has(n)) return n;
  }
  return undefined;
}

export const CONTENT_FORMATS: Readonly<Record<string, number>> = {
  'text/plain': 0,
  'text/plain;charset=utf-8': 0,
  'application/link-format': 40,
  'application/xml': 41,
  'application/octet-stream': 42,
  'application/exi': 47,
  'application/json': 50,
  'application/cbor': 60,
  'application/senml+json': 110,
  'application/senml+cbor': 112,
};

/** Minimal-length unsigned integer (RFC 7252 3.2): zero is the empty value. */
export function encodeUint(v: number): Buffer {
  if (v === 0) return Buffer.allocUnsafeSlow(0);
  const len = v < 0x100 ? 1 : v < 0x10000 ? 2 : v < 0x1000000 ? 3 : 4;
  const out = Buffer.allocUnsafeSlow(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  return out;
}

/** An option's uint value; undefined when longer than 4 bytes. */
export function decodeUint(b: Buffer): number | undefined {
  if (b.length > 4) return undefined;
  let v = 0;
  for (let i = 0; i < b.length; i++) v = v * 256 + b[i]!;
  return v;
}

const uintCache: Buffer[] = [];
for (let v = 0; v < 256; v++) uintCache.push(encodeUint(v));

/** Small uints shared (Content-Format, small Observe and Max-Age values): never modify the result. */
export function uintValue(v: number): Buffer {
  return v < 256 ? uintCache[v]! : encodeUint(v);
}

export interface BlockValue {
  num: number;
  more: boolean;
  szx: number;
}

/** Block1/Block2 (RFC 7959 2.2): NUM up to 2^20-1, SZX 7 is reserved (undefined). */
export function decodeBlock(b: Buffer): BlockValue | undefined {
  const v = decodeUint(b);
  if (v === undefined || b.length > 3) return undefined;
  const szx = v & 7;
  if (szx === 7) return undefined;
  return { num: Math.floor(v / 16), more: (v & 8) !== 0, szx };
}

export function encodeBlock(num: number, more: boolean, szx: number): Buffer {
  return encodeUint(num * 16 + (more ? 8 : 0) + szx);
}

export function blockSize(szx: number): number {
  return 1 << (szx + 4);
}

/** The first option with that number, or undefined. */
export function findOption(options: readonly CoapOption[], number: number): Buffer | undefined {
  for (let i = 0; i < options.length; i++) if (options[i]!.number === number) return options[i]!.value;
  return undefined;
}
