/**
 * Identity mapping: devices that present `tenant/serial` or `serial@tenant` as their PSK
 * identity, while their key was derived from the serial alone.
 *
 * A pattern with a named group `serial` (and any other named groups) does two things:
 *  - key side: a KeyResolver decorator derives from the `serial` group's bytes; identities that
 *    do not match are refused (resolve → [], the handshake answers unknown_psk_identity);
 *  - CoAP side: each session's PeerIdentity carries the groups, which handlers read as
 *    `req.serial` and `req.identityParts.tenant`, while `req.identity` stays what the device sent.
 *
 * The match runs over the identity as UTF-8. An identity that is not valid UTF-8 cannot be
 * mapped faithfully (the derivation must run over exact bytes) and is refused.
 */
import type { KeyResolver, PskCandidate } from '../keys/types.js';
import type { PeerIdentity } from './transport.js';

export interface IdentityParts {
  serial: string;
  [group: string]: string;
}

export class IdentityPattern {
  readonly regex: RegExp;

  constructor(pattern: string | RegExp) {
    let regex: RegExp;
    try {
      regex = typeof pattern === 'string' ? new RegExp(pattern, 'u') : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    } catch (e) {
      throw new Error(`identity pattern is not a valid regular expression: ${(e as Error).message}`);
    }
    if (!/\(\?<serial>/.test(regex.source)) throw new Error('identity pattern must have a named group (?<serial>...)');
    this.regex = regex;
  }

  /** The named groups, or undefined when the identity does not match or the serial is empty. */
  match(identity: string): IdentityParts | undefined {
    const m = this.regex.exec(identity);
    const serial = m?.groups?.serial;
    if (!m || serial === undefined || serial === '') return undefined;
    const parts: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.groups!)) if (v !== undefined) parts[k] = v;
    return parts as IdentityParts;
  }
}

export function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The key side: derives from the serial, refuses identities that do not match. */
export function mapIdentityResolver(
  inner: KeyResolver,
  pattern: IdentityPattern,
  onRefused?: (identity: Buffer) => void,
): KeyResolver {
  return {
    async resolve(identity: Buffer): Promise<PskCandidate[]> {
      const text = decodeUtf8(identity);
      const parts = text === undefined ? undefined : pattern.match(text);
      if (!parts) {
        onRefused?.(identity);
        return [];
      }
      return inner.resolve(Buffer.from(parts.serial, 'utf8'));
    },
    close: () => inner.close(),
  };
}

/** What the DTLS layer tells about a session, as far as the CoAP side needs it. */
export interface SessionIdentity {
  readonly identity: Buffer;
  readonly identityText: string;
  readonly pskTag: string;
  readonly cipherSuite: string;
}

/** The CoAP side: who a session's peer is, worked out once per session (not per request). */
export function peerIdentity(session: SessionIdentity, pattern?: IdentityPattern): PeerIdentity {
  const identity = session.identityText;
  // The handshake only succeeded if the pattern matched, so a miss here means no pattern.
  const parts = pattern?.match(identity) ?? { serial: identity };
  return Object.freeze({
    identity,
    identityBytes: session.identity,
    keyLabel: session.pskTag,
    cipherSuite: session.cipherSuite,
    serial: parts.serial,
    identityParts: Object.freeze({ ...parts }),
  });
}
