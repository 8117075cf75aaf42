/**
 * The derivation shared by the factory and the server:
 *   psk = AES-128-CBC(master, IV = 0^16, MD5(identity))
 * MD5 is only a way to turn any serial into exactly one AES block; the secret is the master
 * key. With one block and a zero IV, CBC equals ECB, which is why HSMs that only offer
 * CKM_AES_CBC (SmartCard-HSM) produce the same bytes.
 */
import { createCipheriv, hash } from 'node:crypto';
import type { KeyEncoding } from './types.js';
import { serialProblem } from './serial.js';

export const BLOCK_SIZE = 16;
export const ZERO_IV: Readonly<Buffer> = Buffer.alloc(BLOCK_SIZE);

/** One-shot hash(): one native call, where createHash().update().digest() made three and a Hash object (~5 µs of a handshake). */
export function md5Block(identity: Buffer): Buffer {
  return hash('md5', identity, 'buffer');
}

export function deriveSoftware(master: Buffer, identity: Buffer): Buffer {
  if (master.length !== BLOCK_SIZE) throw new RangeError('master key must be 16 bytes (AES-128)');
  const cipher = createCipheriv('aes-128-cbc', master, ZERO_IV);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(md5Block(identity)), cipher.final()]);
}

/** raw: the 16 bytes; hex: their 32 lowercase hex digits as ASCII (what coap-client -k takes). */
export function encodePsk(derived16: Buffer, encoding: KeyEncoding): Buffer {
  if (derived16.length !== BLOCK_SIZE) throw new RangeError('derived key must be 16 bytes');
  if (encoding === 'raw') return Buffer.from(derived16);
  if (encoding === 'hex') return Buffer.from(derived16.toString('hex'), 'ascii');
  throw new RangeError(`unknown key encoding`);
}

/** Key check value: the first 3 bytes of AES(key, zero block), the usual KCV convention. */
export function kcvSoftware(master: Buffer): string {
  const cipher = createCipheriv('aes-128-ecb', master, null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.alloc(BLOCK_SIZE)), cipher.final()]).subarray(0, 3).toString('hex');
}

export { MAX_IDENTITY_BYTES } from './serial.js';

/** Whether the server asks the HSM about this identity: the rules of ./serial.ts, the same as `coap-psk derive`. */
export function isDerivableIdentity(identity: Buffer): boolean {
  return serialProblem(identity) === undefined;
}
