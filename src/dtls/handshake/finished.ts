/** Finished (RFC 5246 7.4.9): verify_data, 12 bytes for every cipher suite this project has. */

import { decode, fixed } from '../wire.js';

export const VERIFY_DATA_LENGTH = 12;

export interface Finished {
  verifyData: Buffer;
}

export function parseFinished(body: Buffer): Finished | undefined {
  return decode(body, (r) => ({ verifyData: r.bytes(VERIFY_DATA_LENGTH) }));
}

export function encodeFinished(f: Finished): Buffer {
  return Buffer.from(fixed(f.verifyData, VERIFY_DATA_LENGTH, 'verify_data'));
}
