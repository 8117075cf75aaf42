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
