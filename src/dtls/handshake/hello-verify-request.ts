/** HelloVerifyRequest (RFC 6347 4.2.1). */

import { DTLS_1_0 } from '../constants.js';
import { decode, u16, vector } from '../wire.js';
import { MAX_COOKIE_LENGTH } from './client-hello.js';

export interface HelloVerifyRequest {
  /**
   * RFC 6347 4.2.1: a DTLS 1.2 server SHOULD put DTLS 1.0 (0xFEFF) here whatever version it
   * will negotiate, because the message is sent before the version is agreed and older clients
   * would reject a HelloVerifyRequest of a version they do not know. The parser accepts any value.
   */
  serverVersion: number;
  cookie: Buffer;
}

export function parseHelloVerifyRequest(body: Buffer): HelloVerifyRequest | undefined {
  return decode(body, (r) => ({ serverVersion: r.u16(), cookie: r.vector(1, 0, MAX_COOKIE_LENGTH) }));
}

/** `serverVersion` defaults to DTLS 1.0, as RFC 6347 4.2.1 recommends. */
export function encodeHelloVerifyRequest(hvr: { cookie: Buffer; serverVersion?: number }): Buffer {
  return Buffer.concat([u16(hvr.serverVersion ?? DTLS_1_0), vector(1, hvr.cookie, 0, MAX_COOKIE_LENGTH, 'cookie')]);
}
