import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ResumableSession, encodeSessionState, parseSessionState, resumeDecision } from '../../../src/dtls/session-state.js';
import { openTicket, sealTicket } from '../../../src/dtls/ticket.js';
import { TicketKeyRing, deriveTicketKey } from '../../../src/dtls/ticket-keys.js';
import { hex } from '../codecs/flights.js';

const NOW = Date.UTC(2026, 11, 2, 3, 0, 0);
const DAY = 24 * 3600_000;
const SECRET_A = Buffer.alloc(32, 0xa1);
const SECRET_B = Buffer.alloc(32, 0xb2);
const SECRET_C = Buffer.alloc(32, 0xc3);

const STATE: ResumableSession = {
  version: 0xfefd,
  cipherSuite: 0xc0a8,
  masterSecret: Buffer.alloc(48, 0x4d),
  identity: Buffer.from('SN12345'),
  pskTag: 'master-v1',
  extendedMasterSecret: true,
  encryptThenMac: false,
  issuedAt: NOW,
};

// The StatePlaintext layout documented in session-state.ts, written out field by field.
const STATE_BYTES = hex(
  `
  01                                      -- state_format
  fefd                                    -- protocol_version
  c0a8                                    -- cipher_suite (TLS_PSK_WITH_AES_128_CCM_8)
  00                                      -- compression_method null
  ${'4d'.repeat(48)}                      -- master_secret
  01                                      -- flags: extended_master_secret
  ${(NOW / 1000).toString(16).padStart(8, '0')}                                -- issued_at, seconds
  0007 534e3132333435                     -- identity "SN12345"
  09 6d61737465722d7631                   -- psk_tag "master-v1"
`.replace(/--[^\n]*/g, ''),
);

describe('session state encoding', () => {
  it('is the documented layout', () => {
    expect(encodeSessionState(STATE).toString('hex')).toBe(STATE_BYTES.toString('hex'));
    expect(parseSessionState(STATE_BYTES)).toEqual(STATE);
  });

  it('rejects unknown formats, flags, compression and every truncation', () => {
    for (const [at, value] of [[0, 2], [5, 1], [54, 4]] as const) {
      const bad = Buffer.from(STATE_BYTES);
      bad[at] = value;
      expect(parseSessionState(bad), `byte ${at}`).toBeUndefined();
    }
    for (let n = 0; n < STATE_BYTES.length; n++) expect(parseSessionState(STATE_BYTES.subarray(0, n))).toBeUndefined();
  });
});

describe('tickets (RFC 5077 section 4 format)', () => {
  const ring = new TicketKeyRing([SECRET_A]);
  const open = (r: TicketKeyRing, t: Buffer, now = NOW) => openTicket(r, t, { now, lifetimeMs: DAY });

  it('are key_name ‖ iv ‖ encrypted_state<..> ‖ HMAC-SHA-256, under HKDF-derived keys', () => {
    const ticket = sealTicket(ring.current, STATE);
    // The keys, derived here from the secret as ticket-keys.ts documents.
    const okm = Buffer.from(hkdfSync('sha256', SECRET_A, Buffer.alloc(0), Buffer.from('coap-psk-resolver ticket key v1'), 64));
    const [name, aes, mac] = [okm.subarray(0, 16), okm.subarray(16, 32), okm.subarray(32)];
    expect(ticket.subarray(0, 16)).toEqual(name);
    const iv = ticket.subarray(16, 32);
    const length = ticket.readUInt16BE(32);
    expect(length % 16).toBe(0);
    expect(ticket.length).toBe(16 + 16 + 2 + length + 32);
    const body = ticket.subarray(0, 34 + length);
    expect(ticket.subarray(34 + length)).toEqual(createHmac('sha256', mac).update(body).digest());
    const d = createDecipheriv('aes-128-cbc', aes, iv);
    expect(Buffer.concat([d.update(ticket.subarray(34, 34 + length)), d.final()])).toEqual(STATE_BYTES);
  });

  it('open to the sealed state, on any server with the same secret', () => {
    const ticket = sealTicket(ring.current, STATE);
    expect(open(new TicketKeyRing([SECRET_A]), ticket)).toEqual(STATE);
    expect(sealTicket(ring.current, STATE)).not.toEqual(ticket); // fresh IV each time
  });

  it('a change to any byte makes the ticket unopenable', () => {
    const ticket = sealTicket(ring.current, STATE);
    for (let i = 0; i < ticket.length; i++) {
      const bad = Buffer.from(ticket);
      bad[i]! ^= 0x01;
      expect(open(ring, bad), `byte ${i}`).toBeUndefined();
    }
    for (let n = 0; n < ticket.length; n++) expect(open(ring, ticket.subarray(0, n))).toBeUndefined();
    expect(open(ring, Buffer.concat([ticket, hex('00')]))).toBeUndefined();
  });

  it('expire after their lifetime, and are refused from the future beyond a minute of skew', () => {
    const ticket = sealTicket(ring.current, STATE);
    expect(open(ring, ticket, NOW + DAY - 1000)).toEqual(STATE);
    expect(open(ring, ticket, NOW + DAY)).toBeUndefined();
    expect(open(ring, ticket, NOW - 30_000)).toEqual(STATE);
    expect(open(ring, ticket, NOW - 61_000)).toBeUndefined();
  });

  it('rotate: the previous key still opens, the one before it no longer, a foreign key never', () => {
    const r = new TicketKeyRing([SECRET_A]);
    const old = sealTicket(r.current, STATE);
    r.rotate(SECRET_B);
    expect(r.current.name).toEqual(deriveTicketKey(SECRET_B).name);
    expect(open(r, old)).toEqual(STATE);
    expect(open(r, sealTicket(r.current, STATE))).toEqual(STATE);
    r.rotate(SECRET_C);
    expect(open(r, old)).toBeUndefined();
    expect(open(new TicketKeyRing([SECRET_C]), sealTicket(TicketKeyRing.random().current, STATE))).toBeUndefined();
  });

  it('never throw on arbitrary input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const b = Buffer.from(bytes);
        expect(open(ring, b)).toBeUndefined();
        const named = Buffer.concat([ring.current.name, b]);
        expect(open(ring, named)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('refuse secrets of the wrong length without showing them', () => {
    expect(() => deriveTicketKey(Buffer.from('short secret'))).toThrow(/32 bytes$/);
    expect(() => new TicketKeyRing([])).toThrow(RangeError);
  });
});

describe('resumeDecision (RFC 7627 5.3, EMS-only policy)', () => {
  const hello = { offersExtendedMasterSecret: true, cipherSuites: [0xc0a8, 0xccac], version: 0xfefd };
  const server = [0xccac, 0xc0a8];
  it('resumes an EMS session for an EMS client offering its suite', () => {
    expect(resumeDecision(STATE, hello, server)).toBe('resume');
  });
  it('aborts when the client drops EMS, full handshake for a non-EMS session or a suite gone', () => {
    expect(resumeDecision(STATE, { ...hello, offersExtendedMasterSecret: false }, server)).toBe('abort');
    expect(resumeDecision({ ...STATE, extendedMasterSecret: false }, hello, server)).toBe('full');
    expect(resumeDecision(STATE, { ...hello, cipherSuites: [0xccac] }, server)).toBe('full');
    expect(resumeDecision(STATE, hello, [0xccac])).toBe('full');
    expect(resumeDecision(STATE, { ...hello, version: 0xfeff }, server)).toBe('full');
  });
});
