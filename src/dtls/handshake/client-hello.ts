/** ClientHello (RFC 5246 7.4.1.2 with the DTLS cookie of RFC 6347 4.2.1). */

import { type Extension, encodeExtensions, readHelloExtensions } from '../extensions.js';
import { decode, fixed, u16, u16ListVector, vector } from '../wire.js';

export interface ClientHello {
  clientVersion: number;
  random: Buffer;
  sessionId: Buffer;
  /** Empty on a first ClientHello, the HelloVerifyRequest's cookie on the second. */
  cookie: Buffer;
  cipherSuites: number[];
  compressionMethods: number[];
  extensions: Extension[];
}

export const RANDOM_LENGTH = 32;
export const MAX_SESSION_ID_LENGTH = 32;
/** DTLS 1.2 widened the cookie from <0..32> to <0..2^8-1> (RFC 6347 4.2.1). */
export const MAX_COOKIE_LENGTH = 0xff;

export function parseClientHello(body: Buffer): ClientHello | undefined {
  return decode(body, (r) => ({
    clientVersion: r.u16(),
    random: r.bytes(RANDOM_LENGTH),
    sessionId: r.vector(1, 0, MAX_SESSION_ID_LENGTH),
    cookie: r.vector(1, 0, MAX_COOKIE_LENGTH),
    cipherSuites: r.u16List(2, 2, 0xfffe),
    compressionMethods: r.u8List(1, 0xff),
    extensions: readHelloExtensions(r),
  }));
}

/** An empty extension list is left out entirely (the pre-extensions form of the message). */
export function encodeClientHello(ch: ClientHello): Buffer {
  return Buffer.concat([
    u16(ch.clientVersion),
    fixed(ch.random, RANDOM_LENGTH, 'random'),
    vector(1, ch.sessionId, 0, MAX_SESSION_ID_LENGTH, 'session_id'),
    vector(1, ch.cookie, 0, MAX_COOKIE_LENGTH, 'cookie'),
    u16ListVector(2, ch.cipherSuites, 2, 0xfffe, 'cipher_suites'),
    vector(1, Buffer.from(ch.compressionMethods), 1, 0xff, 'compression_methods'),
    encodeExtensions(ch.extensions, true),
  ]);
}
