import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PeriodTicketKeys, parseTicketKeyFile, ticketSecretBlocks } from '../../../src/dtls/ticket-key-sources.js';
import { deriveTicketKey } from '../../../src/dtls/ticket-keys.js';
import { hex } from '../codecs/flights.js';

// The block cipher an HSM ticket key would be, done here with node's AES-128-ECB.
const TICKET_KEY = hex('2b7e151628aed2a6abf7158809cf4f3c');
const ecb = (block: Buffer): Buffer => {
  const c = createCipheriv('aes-128-ecb', TICKET_KEY, null).setAutoPadding(false);
  return Buffer.concat([c.update(block), c.final()]);
};
const HOUR = 3600_000;

describe('ticket secret derivation from a block-encrypting key', () => {
  it('encrypts "cpsk-ticket" ‖ counter ‖ uint32(period)', () => {
    expect(ticketSecretBlocks(0x01020304)).toEqual([
      hex('6370736b2d7469636b6574 01 01020304'),
      hex('6370736b2d7469636b6574 02 01020304'),
    ]);
  });

  it('rings [p, p-1, p+1] whose keys are the encryptions of those blocks', async () => {
    const keys = new PeriodTicketKeys(ecb, HOUR);
    const now = 500 * HOUR + 123;
    const ring = await keys.update(now);
    const secret = (p: number) => Buffer.concat([ecb(hex(`6370736b2d7469636b6574 01 ${p.toString(16).padStart(8, '0')}`)), ecb(hex(`6370736b2d7469636b6574 02 ${p.toString(16).padStart(8, '0')}`))]);
    expect(ring.current.name).toEqual(deriveTicketKey(secret(500)).name);
    for (const p of [499, 501]) expect(ring.find(deriveTicketKey(secret(p)).name)).toBeDefined();
    expect(ring.find(deriveTicketKey(secret(498)).name)).toBeUndefined();
    expect(keys.msUntilNextPeriod(now)).toBe(HOUR - 123);
  });

  it('two servers with the same key have the same ring; the HSM is asked once per period', async () => {
    let calls = 0;
    const counting = (b: Buffer) => (calls++, ecb(b));
    const a = new PeriodTicketKeys(counting, HOUR);
    const b = new PeriodTicketKeys(ecb, HOUR);
    const t = 10 * HOUR;
    expect((await a.update(t)).current.name).toEqual((await b.update(t + 1000)).current.name);
    expect(calls).toBe(6); // three periods, two blocks each
    await a.update(t + 60_000);
    expect(calls).toBe(6);
    const next = await a.update(t + HOUR);
    expect(calls).toBe(8); // one new period
    expect(next.current.name).toEqual((await b.update(t + HOUR)).current.name);
  });

  it('refuses a rotation under a second and a cipher that does not return blocks', async () => {
    expect(() => new PeriodTicketKeys(ecb, 10)).toThrow(RangeError);
    await expect(new PeriodTicketKeys(() => Buffer.alloc(8), HOUR).update(0)).rejects.toThrow(/16-byte blocks/);
  });
});

describe('ticket key file', () => {
  const k1 = 'a'.repeat(64);
  const k2 = '0123456789abcdef'.repeat(4);
  it('reads secrets in order, skipping blank lines and comments', () => {
    expect(parseTicketKeyFile(`# current first\n${k1}\n\n${k2}\n`)).toEqual({ secrets: [Buffer.from(k1, 'hex'), Buffer.from(k2, 'hex')] });
  });
  it('names the bad line, never shows it', () => {
    const r = parseTicketKeyFile(`${k1}\nsecret-but-wrong\n`);
    expect(r).toEqual({ error: 'line 2: not a 64-hex-character ticket key' });
    expect(parseTicketKeyFile('# nothing\n')).toEqual({ error: 'no ticket key in the file' });
  });
});
