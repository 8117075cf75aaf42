import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HmacSha256 } from '../../../src/dtls/hmac.js';

// RFC 4231 section 4: test cases 1, 2 and 6 (a key longer than the block is hashed first).
const RFC4231 = [
  { name: 'case 1', key: Buffer.alloc(20, 0x0b), data: Buffer.from('Hi There'), mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7' },
  { name: 'case 2', key: Buffer.from('Jefe'), data: Buffer.from('what do ya want for nothing?'), mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
  {
    name: 'case 6',
    key: Buffer.alloc(131, 0xaa),
    data: Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
    mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  },
];

describe('HmacSha256', () => {
  it('gives the RFC 4231 answers', () => {
    for (const v of RFC4231) expect(new HmacSha256(v.key).digest(v.data).toString('hex'), v.name).toBe(v.mac);
  });

  it('hashes the concatenation of its parts, and stays correct across calls with one key', () => {
    const key = randomBytes(48);
    const h = new HmacSha256(key);
    for (let i = 0; i < 50; i++) {
      const a = randomBytes(i);
      const b = randomBytes(3 * i);
      expect(h.digest(a, b)).toEqual(createHmac('sha256', key).update(a).update(b).digest());
    }
    expect(h.digest()).toEqual(createHmac('sha256', key).digest());
  });

  it('does not change the caller key', () => {
    const key = Buffer.alloc(100, 7);
    new HmacSha256(key).wipe();
    expect(key).toEqual(Buffer.alloc(100, 7));
  });
});
