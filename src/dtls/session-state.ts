/**
 * What a DTLS session must keep to be resumed (RFC 5246 7.3 abbreviated handshake), whether it
 * is kept by the server (session-cache.ts, by session ID) or by the client inside a ticket
 * (ticket.ts, RFC 5077). A resumed session is as authenticated as the original: it carries the
 * same PSK identity and key label, and the master secret that only a holder of that PSK could
 * have derived. The PSK itself is not kept: resuming needs no key lookup, hence no HSM.
 *
 * The encoding is ours (RFC 5077 section 4 leaves StatePlaintext to the server):
 *
 *   uint8  state_format = 1
 *   ProtocolVersion protocol_version; CipherSuite cipher_suite; CompressionMethod compression (0)
 *   opaque master_secret[48]
 *   uint8  flags: bit 0 extended_master_secret, bit 1 encrypt_then_mac
 *   uint32 issued_at, seconds since 1970
 *   opaque identity<0..2^16-1>         the PSK identity as it came off the wire
 *   opaque psk_tag<0..2^8-1>           UTF-8 key label the PSK lookup returned
 */

import { decode, malformed, u16, u8, vector } from './wire.js';

export const MASTER_SECRET_LENGTH = 48;
const STATE_FORMAT = 1;
const FLAG_EMS = 1;
const FLAG_ETM = 2;

export interface ResumableSession {
  /** ProtocolVersion of the session (DTLS 1.2: 0xFEFD). */
  version: number;
  cipherSuite: number;
  masterSecret: Buffer;
  identity: Buffer;
  pskTag: string;
  /** RFC 7627: only sessions with extended master secret are resumed (resumeDecision). */
  extendedMasterSecret: boolean;
  /** RFC 7366: a resumed session keeps the original's choice. */
  encryptThenMac: boolean;
  /** When the full handshake completed, ms since 1970 (encoded in whole seconds). */
  issuedAt: number;
}

export function encodeSessionState(s: ResumableSession): Buffer {
  if (s.masterSecret.length !== MASTER_SECRET_LENGTH) throw new RangeError('master_secret must be 48 bytes');
  const issued = Buffer.allocUnsafe(4);
  issued.writeUInt32BE(Math.floor(s.issuedAt / 1000));
  return Buffer.concat([
    u8(STATE_FORMAT),
    u16(s.version),
    u16(s.cipherSuite),
    u8(0),
    s.masterSecret,
    u8((s.extendedMasterSecret ? FLAG_EMS : 0) | (s.encryptThenMac ? FLAG_ETM : 0)),
    issued,
    vector(2, s.identity, 0, 0xffff, 'identity'),
    vector(1, Buffer.from(s.pskTag, 'utf8'), 0, 0xff, 'psk_tag'),
  ]);
}

/**
 * Undefined for anything malformed, an unknown format or flags, or a compression method other
 * than null. The buffers returned are copies with memory of their own (they outlive the input,
 * and a small slice of node's pool would pin it).
 */
export function parseSessionState(buf: Buffer): ResumableSession | undefined {
  return decode(buf, (r) => {
    if (r.u8() !== STATE_FORMAT) malformed();
    const version = r.u16();
    const cipherSuite = r.u16();
    if (r.u8() !== 0) malformed();
    const masterSecret = ownCopy(r.bytes(MASTER_SECRET_LENGTH));
    const flags = r.u8();
    if ((flags & ~(FLAG_EMS | FLAG_ETM)) !== 0) malformed();
    const issuedAt = (r.u16() * 0x10000 + r.u16()) * 1000;
    const identity = ownCopy(r.vector(2, 0, 0xffff));
    const pskTag = r.vector(1, 0, 0xff).toString('utf8');
    return {
      version,
      cipherSuite,
      masterSecret,
      identity,
      pskTag,
      extendedMasterSecret: (flags & FLAG_EMS) !== 0,
      encryptThenMac: (flags & FLAG_ETM) !== 0,
      issuedAt,
    };
  });
}

export function ownCopy(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length);
  b.copy(out);
  return out;
}

/**
 * RFC 7627 section 5.3, server side, with this server's policy that a session without extended
 * master secret is never resumed:
 *  - 'full'  the original session had no EMS, or its suite is no longer offered or enabled:
 *            go on with a full handshake (the client's ticket or session ID is ignored);
 *  - 'abort' the original had EMS but this ClientHello does not offer it: RFC 7627 says MUST
 *            abort (handshake_failure), since the client may be a downgraded or different one;
 *  - 'resume' otherwise.
 * The caller still checks that the identity may connect (deny list): resumption skips the key
 * lookup, not the authorization.
 */
export function resumeDecision(
  state: ResumableSession,
  hello: { offersExtendedMasterSecret: boolean; cipherSuites: readonly number[]; version: number },
  serverSuites: readonly number[],
): 'resume' | 'full' | 'abort' {
  if (!state.extendedMasterSecret) return 'full';
  if (!hello.offersExtendedMasterSecret) return 'abort';
  if (state.version !== hello.version) return 'full';
  if (!hello.cipherSuites.includes(state.cipherSuite) || !serverSuites.includes(state.cipherSuite)) return 'full';
  return 'resume';
}
