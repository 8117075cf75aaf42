/**
 * The CoAP message format (RFC 7252 section 3): one parse and one encode, written for the
 * request path. Parsing never throws and never copies: options and payload are views into the
 * datagram, which the endpoint only keeps for the duration of one request (anything kept longer
 * is copied by whoever keeps it).
 */

export const enum MessageType {
  CON = 0,
  NON = 1,
  ACK = 2,
  RST = 3,
}

export interface CoapOption {
  readonly number: number;
  readonly value: Buffer;
}

export interface CoapMessage {
  type: MessageType;
  /** The code byte: class << 5 | detail (0x01 GET, 0x45 2.05, ...). */
  code: number;
  messageId: number;
  token: Buffer;
  /** In wire order (ascending option number, repeats in sequence). */
  options: CoapOption[];
  payload: Buffer;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** Header fields readable from any datagram of 4 bytes or more with version 1, else undefined. */
export function peekHeader(data: Buffer): { type: MessageType; messageId: number } | undefined {
  if (data.length < 4 || data[0]! >> 6 !== 1) return undefined;
  return { type: ((data[0]! >> 4) & 3) as MessageType, messageId: (data[2]! << 8) | data[3]! };
}

/** Reads an option delta or length nibble's extension; -1 when malformed or truncated. */
function extended(data: Buffer, nibble: number, at: number): number {
  if (nibble < 13) return nibble;
  if (nibble === 13) return at < data.length ? data[at]! + 13 : -1;
  if (nibble === 14) return at + 1 < data.length ? ((data[at]! << 8) | data[at + 1]!) + 269 : -1;
  return -1; // 15 is reserved for the payload marker (RFC 7252 3.1): a format error here
}

/**
 * A message, or undefined for a format error (RFC 7252 3 and 4.1): version not 1, token length
 * 9-15, a reserved option nibble, an option running past the end, a payload marker with no
 * payload behind it, or an Empty message with anything after its header.
 */
export function parseMessage(data: Buffer): CoapMessage | undefined {
  const n = data.length;
  if (n < 4) return undefined;
  const b0 = data[0]!;
  if (b0 >> 6 !== 1) return undefined;
  const tkl = b0 & 0x0f;
  if (tkl > 8 || 4 + tkl > n) return undefined;
  const code = data[1]!;
  if (code === 0 && n !== 4) return undefined;
  const options: CoapOption[] = [];
  let at = 4 + tkl;
  let number = 0;
  let payload: Buffer = EMPTY;
  while (at < n) {
    const byte = data[at]!;
    if (byte === 0xff) {
      if (at + 1 >= n) return undefined;
      payload = data.subarray(at + 1);
      break;
    }
    at++;
    const dn = byte >> 4;
    const ln = byte & 0x0f;
    const delta = extended(data, dn, at);
    if (delta < 0) return undefined;
    at += dn === 13 ? 1 : dn === 14 ? 2 : 0;
    const length = extended(data, ln, at);
    if (length < 0) return undefined;
    at += ln === 13 ? 1 : ln === 14 ? 2 : 0;
    if (at + length > n) return undefined;
    number += delta;
    options.push({ number, value: data.subarray(at, at + length) });
    at += length;
  }
  return {
    type: ((b0 >> 4) & 3) as MessageType,
    code,
    messageId: (data[2]! << 8) | data[3]!,
    token: data.subarray(4, 4 + tkl),
    options,
    payload,
  };
}

function nibbleSize(v: number): number {
  return v < 13 ? 0 : v < 269 ? 1 : 2;
}

/** Options must be sorted by number (stable for repeats): `sortOptions` does it for a built list. */
export function encodeMessage(
  type: MessageType,
  code: number,
  messageId: number,
  token: Buffer,
  options: readonly CoapOption[],
  payload: Buffer | undefined,
): Buffer {
  let size = 4 + token.length;
  let previous = 0;
  for (let i = 0; i < options.length; i++) {
    const o = options[i]!;
    size += 1 + nibbleSize(o.number - previous) + nibbleSize(o.value.length) + o.value.length;
    previous = o.number;
  }
  const plen = payload === undefined ? 0 : payload.length;
  if (plen > 0) size += 1 + plen;
  // Its own memory: a reply may be kept for duplicate detection for minutes (see CONTRIBUTING).
  const out = Buffer.allocUnsafeSlow(size);
  out[0] = 0x40 | (type << 4) | token.length;
  out[1] = code;
  out[2] = (messageId >> 8) & 0xff;
  out[3] = messageId & 0xff;
  let at = 4;
  if (token.length > 0) at += token.copy(out, at);
  previous = 0;
  for (let i = 0; i < options.length; i++) {
    const o = options[i]!;
    const delta = o.number - previous;
    const len = o.value.length;
    previous = o.number;
    const start = at++;
    let head = 0;
    if (delta < 13) head = delta << 4;
    else if (delta < 269) {
      head = 13 << 4;
      out[at++] = delta - 13;
    } else {
      head = 14 << 4;
      out[at++] = (delta - 269) >> 8;
      out[at++] = (delta - 269) & 0xff;
    }
    if (len < 13) head |= len;
    else if (len < 269) {
      head |= 13;
      out[at++] = len - 13;
    } else {
      head |= 14;
      out[at++] = (len - 269) >> 8;
      out[at++] = (len - 269) & 0xff;
    }
    out[start] = head;
    if (len > 0) at += o.value.copy(out, at);
  }
  if (plen > 0) {
    out[at++] = 0xff;
    payload!.copy(out, at);
  }
  return out;
}

/** Empty ACK or RST (RFC 7252 4.2, 4.3): four bytes. */
export function emptyMessage(type: MessageType, messageId: number): Buffer {
  const out = Buffer.allocUnsafeSlow(4);
  out[0] = 0x40 | (type << 4);
  out[1] = 0;
  out[2] = (messageId >> 8) & 0xff;
  out[3] = messageId & 0xff;
  return out;
}

/** Insertion sort by option number, stable: response option lists have a handful of entries. */
export function sortOptions(options: CoapOption[]): void {
  for (let i = 1; i < options.length; i++) {
    const o = options[i]!;
    let j = i - 1;
    while (j >= 0 && options[j]!.number > o.number) {
      options[j + 1] = options[j]!;
      j--;
    }
    options[j + 1] = o;
  }
}

const CODE_TEXT: string[] = [];
for (let c = 0; c < 256; c++) CODE_TEXT.push(`${c >> 5}.${String(c & 0x1f).padStart(2, '0')}`);

/** "2.05" for 0x45 (a table: the metrics label every response with it). */
export function codeText(code: number): string {
  return CODE_TEXT[code & 0xff]!;
}

/** 0x45 for "2.05"; undefined for anything that is not c.dd with c ≤ 7, dd ≤ 31. */
export function codeByte(text: string): number | undefined {
  const m = /^([0-7])\.(\d\d)$/.exec(text);
  if (!m) return undefined;
  const detail = Number(m[2]);
  return detail > 31 ? undefined : (Number(m[1]) << 5) | detail;
}
