/**
 * planResumption (src/dtls/server-resumption.ts), the server's choice per ClientHello, on
 * ClientHellos built here: RFC 7627 5.3 (an EMS session offered without EMS: abort; a session
 * without EMS: full handshake), RFC 5077 3.4 (the client's session ID is echoed when a ticket
 * resumes), a refused identity and a tampered ticket get full handshakes, and who gets a fresh
 * session ID or a NewSessionTicket.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DTLS_CONFIG } from '../../../src/dtls/config.js';
import { ExtensionType } from '../../../src/dtls/constants.js';
import { encodeFlagExtension, type Extension } from '../../../src/dtls/extensions.js';
import type { ClientHello } from '../../../src/dtls/handshake/client-hello.js';
import { isFailure, negotiate, type Negotiated } from '../../../src/dtls/negotiation.js';
import { planResumption, type ResumptionContext } from '../../../src/dtls/server-resumption.js';
import { SessionCache } from '../../../src/dtls/session-cache.js';
import type { ResumableSession } from '../../../src/dtls/session-state.js';
import { encodeSessionTicketExtension } from '../../../src/dtls/ticket-extension.js';
import { sealTicket } from '../../../src/dtls/ticket.js';
import { TicketKeyRing } from '../../../src/dtls/ticket-keys.js';

const CCM8 = 0xc0a8; // TLS_PSK_WITH_AES_128_CCM_8 (RFC 6655)
const ring = new TicketKeyRing([Buffer.alloc(32, 7)]);
const session = (ems = true): ResumableSession => ({
  version: 0xfefd, cipherSuite: CCM8, masterSecret: Buffer.alloc(48, 1), identity: Buffer.from('SN-plan'), pskTag: 'k',
  extendedMasterSecret: ems, encryptThenMac: false, issuedAt: Date.now(),
});

function hello(extensions: Extension[], sessionId = Buffer.alloc(32, 9)): ClientHello {
  return { clientVersion: 0xfefd, random: Buffer.alloc(32, 2), sessionId, cookie: Buffer.alloc(0), cipherSuites: [CCM8], compressionMethods: [0], extensions };
}
const EMS = encodeFlagExtension(ExtensionType.extended_master_secret);

function plan(ch: ClientHello, ctx: Partial<ResumptionContext> = {}) {
  const n = negotiate(ch, DEFAULT_DTLS_CONFIG);
  if (isFailure(n)) throw new Error(n.reason);
  return planResumption(ch, n as Negotiated, { ring, cache: new SessionCache({ maxEntries: 10, ttlMs: 60_000 }), lifetimeMs: 60_000, serverSuites: [CCM8], ...ctx });
}

describe('planResumption', () => {
  it('resumes a ticket, echoing the session ID, and renews the ticket', () => {
    const ch = hello([EMS, encodeSessionTicketExtension(sealTicket(ring.current, session()))]);
    const p = plan(ch);
    expect(p).not.toBe('abort');
    if (p === 'abort') return;
    expect(p.resumes).toMatchObject({ kind: 'ticket', state: { pskTag: 'k' } });
    expect(p.resumes!.state.identity.toString()).toBe('SN-plan');
    expect(p.sessionId.equals(ch.sessionId)).toBe(true);
    expect(p.issueTicket).toBeDefined();
  });

  it('RFC 7627 5.3: an EMS session offered without EMS aborts; a session without EMS is not resumed', () => {
    expect(plan(hello([encodeSessionTicketExtension(sealTicket(ring.current, session()))]))).toBe('abort');
    const p = plan(hello([EMS, encodeSessionTicketExtension(sealTicket(ring.current, session(false)))]));
    expect(p).not.toBe('abort');
    expect(p !== 'abort' && p.resumes).toBeFalsy();
  });

  it('a refused identity, a tampered ticket or a foreign key gets a full handshake with a new ticket and no session ID', () => {
    const ticket = sealTicket(ring.current, session());
    const tampered = Buffer.from(ticket);
    tampered[40] ^= 1;
    const foreign = sealTicket(TicketKeyRing.random().current, session());
    for (const [t, ctx] of [[ticket, { refused: () => true }], [tampered, {}], [foreign, {}]] as const) {
      const p = plan(hello([EMS, encodeSessionTicketExtension(t)]), ctx);
      expect(p).toMatchObject({ cache: false });
      if (p === 'abort') return;
      expect(p.resumes).toBeUndefined();
      expect(p.sessionId.length).toBe(0);
      expect(p.issueTicket).toBeDefined();
    }
  });

  it('by session ID from the cache; a client without the ticket extension gets a fresh ID to cache', () => {
    const cache = new SessionCache({ maxEntries: 10, ttlMs: 60_000 });
    const id = Buffer.alloc(32, 5);
    cache.add(id, session());
    const p = plan(hello([EMS], id), { cache });
    expect(p !== 'abort' && p.resumes?.kind).toBe('id');
    const fresh = plan(hello([EMS], Buffer.alloc(32, 6)), { cache });
    expect(fresh).toMatchObject({ cache: true });
    expect(fresh !== 'abort' && fresh.sessionId.length).toBe(32);
    expect(fresh !== 'abort' && fresh.issueTicket).toBeUndefined();
  });
});
