/**
 * Hand-built CoAP messages (RFC 7252 section 3) for tests that speak through a DTLS client
 * library directly: small enough to check by eye, independent of node-coap.
 */

/** A CON GET with one token byte and the given Uri-Path segments. */
export function coapGet(messageId: number, path: string[], token = 0xab): Buffer {
  const parts: number[] = [0x41, 0x01, (messageId >> 8) & 0xff, messageId & 0xff, token];
  let previous = 0;
  for (const segment of path) {
    const value = Buffer.from(segment, 'utf8');
    if (value.length > 12) throw new Error('coapGet: keep test segments under 13 bytes');
    const delta = 11 - previous; // Uri-Path is option 11
    parts.push((delta << 4) | value.length, ...value);
    previous = 11;
  }
  return Buffer.from(parts);
}

export interface CoapReply {
  type: number;
  code: string;
  messageId: number;
  payload: Buffer;
}

/** Enough of a parser for replies to coapGet: header, token skipped, options skipped, payload. */
export function parseReply(msg: Buffer): CoapReply | undefined {
  if (msg.length < 4 || msg[0] >> 6 !== 1) return undefined;
  const tkl = msg[0] & 0x0f;
  const code = `${msg[1] >> 5}.${String(msg[1] & 0x1f).padStart(2, '0')}`;
  const marker = msg.indexOf(0xff, 4 + tkl);
  return {
    type: (msg[0] >> 4) & 0x03,
    code,
    messageId: msg.readUInt16BE(2),
    payload: marker < 0 ? Buffer.alloc(0) : msg.subarray(marker + 1),
  };
}

/** CoAP GET /whoami on a DTLS client session; resolves with the reply's payload, or undefined after 3 s. */
export function whoamiOver(client: { session: { once(event: 'data', l: (d: Buffer) => void): unknown }; send(d: Buffer): boolean }, mid: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 3000);
    client.session.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(parseReply(d)?.payload.toString());
    });
    client.send(coapGet(mid, ['whoami']));
  });
}

/**
 * A GET with Observe: 0 (RFC 7641 2: option 6, the empty uint) and a 4-byte token, CON or NON,
 * for one Uri-Path segment.
 */
export function coapObserve(messageId: number, token: Buffer, segment: string, confirmable: boolean): Buffer {
  const value = Buffer.from(segment, 'utf8');
  if (token.length !== 4 || value.length > 12) throw new Error('coapObserve: a 4-byte token and a short segment');
  // Observe (6): delta 6, length 0; then Uri-Path (11): delta 5.
  return Buffer.from([confirmable ? 0x44 : 0x54, 0x01, (messageId >> 8) & 0xff, messageId & 0xff, ...token, 0x60, 0x50 | value.length, ...value]);
}

/** A CON POST with a 1-byte token for one Uri-Path segment. */
export function coapPost(messageId: number, segment: string, token = 0xac): Buffer {
  const value = Buffer.from(segment, 'utf8');
  return Buffer.from([0x41, 0x02, (messageId >> 8) & 0xff, messageId & 0xff, token, 0xb0 | value.length, ...value]);
}

/** An empty ACK (RFC 7252 4.2) for a CON notification. */
export function coapAck(messageId: number): Buffer {
  return Buffer.from([0x60, 0x00, (messageId >> 8) & 0xff, messageId & 0xff]);
}

export interface Notification {
  type: number;
  code: string;
  messageId: number;
  token: Buffer;
  /** The Observe option's value; undefined without one. */
  observe: number | undefined;
  payload: Buffer;
}

/** Header, token, the Observe option (deltas walked by hand, RFC 7252 3.1) and the payload. */
export function parseNotification(msg: Buffer): Notification | undefined {
  if (msg.length < 4 || msg[0] >> 6 !== 1) return undefined;
  const tkl = msg[0] & 0x0f;
  let at = 4 + tkl;
  let number = 0;
  let observe: number | undefined;
  while (at < msg.length && msg[at] !== 0xff) {
    let delta = msg[at] >> 4;
    let length = msg[at] & 0x0f;
    at++;
    if (delta === 13) delta = 13 + msg[at++];
    else if (delta === 14) (delta = 269 + msg.readUInt16BE(at)), (at += 2);
    if (length === 13) length = 13 + msg[at++];
    else if (length === 14) (length = 269 + msg.readUInt16BE(at)), (at += 2);
    number += delta;
    if (number === 6) observe = length === 0 ? 0 : msg.readUIntBE(at, length);
    at += length;
  }
  return {
    type: (msg[0] >> 4) & 0x03,
    code: `${msg[1] >> 5}.${String(msg[1] & 0x1f).padStart(2, '0')}`,
    messageId: msg.readUInt16BE(2),
    token: msg.subarray(4, 4 + tkl),
    observe,
    payload: at < msg.length ? msg.subarray(at + 1) : Buffer.alloc(0),
  };
}

/** RFC 7641 3.4: is Observe value `v2` (arrived later) fresher than `v1`? (the 128 s clause aside) */
export function observeFresher(v1: number, v2: number): boolean {
  return (v1 < v2 && v2 - v1 < 2 ** 23) || (v1 > v2 && v1 - v2 > 2 ** 23);
}
