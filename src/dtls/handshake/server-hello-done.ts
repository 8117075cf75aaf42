/** ServerHelloDone (RFC 5246 7.4.5): an empty body. */

export function parseServerHelloDone(body: Buffer): Record<string, never> | undefined {
  return body.length === 0 ? {} : undefined;
}

export function encodeServerHelloDone(): Buffer {
  return Buffer.alloc(0);
}
