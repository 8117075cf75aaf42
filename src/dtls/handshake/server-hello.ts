/** ServerHello (RFC 5246 7.4.1.3). */

import { type Extension, encodeExtensions, readHelloExtensions } from '../extensions.js';
import { decode, fixed, u16, u8, vector } from '../wire.js';
import { MAX_SESSION_ID_LENGTH, RANDOM_LENGTH } from './client-hello.js';

export interface ServerHello {
  serverVersion: number;
  random: Buffer;
  sessionId: Buffer;
  cipherSuite: number;
  compressionMethod: number;
  extensions: Extension[];
}

export function parseServerHello(body: Buffer): ServerHello | undefined {
  return decode(body, (r) => ({
    serverVersion: r.u16(),
    random: r.bytes(RANDOM_LENGTH),
    sessionId: r.vector(1, 0, MAX_SESSION_ID_LENGTH),
    cipherSuite: r.u16(),
    compressionMethod: r.u8(),
    extensions: readHelloExtensions(r),
  }));
}

/** An empty extension list is left out entirely. */
export function encodeServerHello(sh: ServerHello): Buffer {
  return Buffer.concat([
    u16(sh.serverVersion),
    fixed(sh.random, RANDOM_LENGTH, 'random'),
    vector(1, sh.sessionId, 0, MAX_SESSION_ID_LENGTH, 'session_id'),
    u16(sh.cipherSuite),
    u8(sh.compressionMethod),
    encodeExtensions(sh.extensions, true),
  ]);
}
