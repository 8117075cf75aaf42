import { describe, expect, it } from 'vitest';
import { COOKIE_LENGTH, CookieJar, type CookieInput } from '../../../src/dtls/cookie.js';

const input: CookieInput = {
  address: '127.0.0.1',
  port: 40000,
  clientVersion: 0xfefd,
  random: Buffer.alloc(32, 7),
  cipherSuites: [0xc0a8, 0xccac],
  compressionMethods: [0],
};

describe('CookieJar', () => {
  it('verifies its own cookie and nothing else', () => {
    const jar = new CookieJar();
    const cookie = jar.issue(input);
    expect(cookie).toHaveLength(COOKIE_LENGTH);
    expect(jar.verify(input, cookie)).toBe(true);
    expect(jar.verify({ ...input, port: 40001 }, cookie)).toBe(false);
    expect(jar.verify({ ...input, address: '127.0.0.2' }, cookie)).toBe(false);
    expect(jar.verify({ ...input, random: Buffer.alloc(32, 8) }, cookie)).toBe(false);
    expect(jar.verify({ ...input, cipherSuites: [0xc0a8] }, cookie)).toBe(false);
    expect(jar.verify({ ...input, compressionMethods: [0, 1] }, cookie)).toBe(false);
    expect(jar.check(input, cookie.subarray(1))).toBe('wrong_length');
    expect(jar.check({ ...input, port: 40001 }, cookie)).toBe('no_match');
    expect(jar.verify(input, Buffer.alloc(COOKIE_LENGTH))).toBe(false);
    expect(jar.verify(input, cookie.subarray(1))).toBe(false);
    expect(new CookieJar().verify(input, cookie)).toBe(false); // another server's secret
  });

  it('accepts a cookie for one rotation period after it was issued, then no more', () => {
    let now = 0;
    const jar = new CookieJar(1000, () => now);
    const cookie = jar.issue(input);
    now = 1500; // one rotation: the previous secret still verifies
    expect(jar.verify(input, cookie)).toBe(true);
    now = 2600; // two rotations: gone
    expect(jar.verify(input, cookie)).toBe(false);
  });
});
