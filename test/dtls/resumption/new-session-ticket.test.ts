import { describe, expect, it } from 'vitest';
import { ExtensionType, HandshakeType } from '../../../src/dtls/constants.js';
import { parseFlagExtension } from '../../../src/dtls/extensions.js';
import { parseClientHello } from '../../../src/dtls/handshake/client-hello.js';
import { encodeNewSessionTicket, parseNewSessionTicket } from '../../../src/dtls/handshake/new-session-ticket.js';
import { parseServerHello } from '../../../src/dtls/handshake/server-hello.js';
import { encodeSessionTicketExtension, readSessionTicketOffer } from '../../../src/dtls/ticket-extension.js';
import { readFileSync } from 'node:fs';
import { parseHandshakeFragments } from '../../../src/dtls/handshake/header.js';
import { parseRecords } from '../../../src/dtls/record.js';
import { expectRejectsTruncationAndTrailing, hex, messageBody } from '../codecs/flights.js';

/**
 * The body of the one handshake message in a datagram of test/fixtures/resumption (kept apart
 * from test/fixtures/flights, whose datagrams seed the fuzz corpus).
 */
function resumptionFixtureBody(name: string, msgType: number): Buffer {
  const datagram = hex(readFileSync(new URL(`../../fixtures/resumption/${name}.hex`, import.meta.url), 'utf8'));
  const { records, malformed } = parseRecords(datagram);
  expect(malformed).toBe(false);
  const fragments = parseHandshakeFragments(records[0]!.fragment)!;
  expect(fragments.map((f) => [f.msgType, f.fragmentLength === f.length])).toEqual([[msgType, true]]);
  return fragments[0]!.body;
}

describe('NewSessionTicket (RFC 5077 3.3)', () => {
  // Captured from OpenSSL 3.0.19 s_server (`openssl s_client -dtls1_2 -msg`): its default
  // lifetime hint of 7200 s and a 176-byte ticket.
  const body = resumptionFixtureBody('openssl-s_server-new-session-ticket', HandshakeType.new_session_ticket);

  it('reads a real one from OpenSSL', () => {
    expect(HandshakeType.new_session_ticket).toBe(4);
    const nst = parseNewSessionTicket(body)!;
    expect(nst.ticketLifetimeHint).toBe(7200);
    expect(nst.ticket).toHaveLength(176);
    expect(nst.ticket.subarray(0, 4)).toEqual(hex('53a71823'));
    expect(encodeNewSessionTicket(nst)).toEqual(body);
  });

  it('encodes uint32 hint then opaque ticket<0..2^16-1>', () => {
    expect(encodeNewSessionTicket({ ticketLifetimeHint: 0x01020304, ticket: hex('aabbcc') })).toEqual(hex('01020304 0003 aabbcc'));
    expect(encodeNewSessionTicket({ ticketLifetimeHint: 0xffffffff, ticket: Buffer.alloc(0) })).toEqual(hex('ffffffff 0000'));
    expect(parseNewSessionTicket(hex('ffffffff 0000'))).toEqual({ ticketLifetimeHint: 0xffffffff, ticket: Buffer.alloc(0) });
    expect(() => encodeNewSessionTicket({ ticketLifetimeHint: 2 ** 32, ticket: Buffer.alloc(0) })).toThrow(RangeError);
  });

  it('rejects truncation and trailing bytes', () => {
    expectRejectsTruncationAndTrailing(parseNewSessionTicket, body);
  });
});

describe('SessionTicket extension (RFC 5077 3.2)', () => {
  it('OpenSSL offers an empty one (asks for a ticket) and its s_server answers with an empty one', () => {
    const ch = parseClientHello(messageBody('openssl-psk-aes128-ccm8-client-hello', HandshakeType.client_hello))!;
    expect(readSessionTicketOffer(ch.extensions)).toEqual({ offered: true, ticket: Buffer.alloc(0) });
    const sh = parseServerHello(messageBody('openssl-s_server-psk-aes128-ccm8-server-hello', HandshakeType.server_hello))!;
    expect(parseFlagExtension(sh.extensions, ExtensionType.session_ticket)).toBe(true);
  });

  it('carries the ticket as extension_data itself, with no length of its own', () => {
    expect(encodeSessionTicketExtension(hex('0102'))).toEqual({ type: 35, data: hex('0102') });
    expect(readSessionTicketOffer([{ type: 35, data: hex('0102') }])).toEqual({ offered: true, ticket: hex('0102') });
    expect(readSessionTicketOffer([])).toEqual({ offered: false });
    expect(encodeSessionTicketExtension().data).toHaveLength(0);
  });
});
