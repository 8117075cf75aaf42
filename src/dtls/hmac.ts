/**
 * HMAC-SHA256 (RFC 2104) on node's one-shot crypto.hash(): H((K ^ opad) ‖ H((K ^ ipad) ‖ m)).
 *
 * A handshake computes about fifteen HMACs (cookie, PRF for the master secret, the key block and
 * both Finished messages), each a handful of bytes. createHmac() builds a KeyObject and a stream
 * object per call; two one-shot hashes over a reused buffer cost about a quarter less. The PRF
 * computes every HMAC of one P_SHA256 under the same key, so the padded key is made once.
 */
import { hash } from 'node:crypto';

const BLOCK = 64;
const OUTPUT = 32;

export class HmacSha256 {
  private readonly ipadKey = Buffer.alloc(BLOCK, 0x36);
  private readonly outer = Buffer.alloc(BLOCK + OUTPUT, 0x5c);

  constructor(key: Buffer) {
    const k = key.length > BLOCK ? hash('sha256', key, 'buffer') : key;
    for (let i = 0; i < k.length; i++) {
      this.ipadKey[i] ^= k[i]!;
      this.outer[i] ^= k[i]!;
    }
    if (k !== key) k.fill(0);
  }

  /** HMAC over the concatenation of `parts`. */
  digest(...parts: Buffer[]): Buffer {
    let length = BLOCK;
    for (const p of parts) length += p.length;
    const inner = Buffer.allocUnsafe(length);
    this.ipadKey.copy(inner, 0);
    let at = BLOCK;
    for (const p of parts) at += p.copy(inner, at);
    hash('sha256', inner, 'buffer').copy(this.outer, BLOCK);
    inner.fill(0, 0, BLOCK);
    return hash('sha256', this.outer, 'buffer');
  }

  /** Erases the padded key. */
  wipe(): void {
    this.ipadKey.fill(0);
    this.outer.fill(0);
  }
}
