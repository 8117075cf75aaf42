/**
 * What the server picks from a ClientHello: version check, cipher suite, ECDHE group, and
 * which extensions it answers. Pure function of the ClientHello and the configuration, so
 * it is tested without a socket.
 */
import type { HandshakeFailure } from './reasons.js';
import type { CipherSuite } from './ciphers/types.js';
import { CIPHER_SUITES } from './ciphers/index.js';
import {
  AlertDescription,
  DTLS_1_2,
  EMPTY_RENEGOTIATION_INFO_SCSV,
  ExtensionType,
  NamedGroup,
} from './constants.js';
import {
  type Extension,
  encodeEcPointFormats,
  encodeFlagExtension,
  encodeRenegotiationInfo,
  findExtension,
  parseFlagExtension,
  parseRenegotiationInfo,
  parseSupportedGroups,
} from './extensions.js';
import type { ClientHello } from './handshake/client-hello.js';

export interface Negotiated {
  readonly suite: CipherSuite;
  /** ECDHE group for ecdhe_psk suites. */
  readonly group?: number;
  readonly extendedMasterSecret: boolean;
  readonly encryptThenMac: boolean;
  /** ServerHello extensions, in the order they are sent. */
  readonly extensions: Extension[];
}

export interface NegotiationFailure {
  readonly alert: number;
  readonly reason: HandshakeFailure;
}

export interface NegotiationPolicy {
  /** Server preference, most preferred first (IANA values). */
  readonly cipherSuites: readonly number[];
  /** Server preference among ECDHE groups. */
  readonly groups: readonly number[];
  /** Refuse clients that do not offer extended_master_secret (RFC 7627 section 5.2). */
  readonly requireExtendedMasterSecret: boolean;
  /** Choose a CBC suite for a client that does not offer encrypt_then_mac (see aes-cbc-sha256.ts). */
  readonly allowCbcWithoutEncryptThenMac?: boolean;
}

export const DEFAULT_GROUPS: readonly number[] = [NamedGroup.x25519, NamedGroup.secp256r1];

export function negotiate(ch: ClientHello, policy: NegotiationPolicy): Negotiated | NegotiationFailure {
  // DTLS versions count downwards: 1.2 is 0xFEFD, 1.0 is 0xFEFF. A client that cannot do 1.2
  // (a larger number) is refused; one announcing a later version negotiates 1.2.
  if (ch.clientVersion > DTLS_1_2) return fail(AlertDescription.protocol_version, 'protocol_version');
  if (!ch.compressionMethods.includes(0)) return fail(AlertDescription.illegal_parameter, 'no_null_compression');

  const ems = parseFlagExtension(ch.extensions, ExtensionType.extended_master_secret);
  const etm = parseFlagExtension(ch.extensions, ExtensionType.encrypt_then_mac);
  if (ems === undefined || etm === undefined) return fail(AlertDescription.decode_error, 'malformed_extension');
  if (policy.requireExtendedMasterSecret && !ems) {
    return fail(AlertDescription.handshake_failure, 'extended_master_secret_required');
  }

  const reneg = secureRenegotiation(ch);
  if (reneg === 'invalid') return fail(AlertDescription.handshake_failure, 'bad_renegotiation_info');

  const group = pickGroup(ch, policy.groups);
  const suite = pickSuite(ch, policy.cipherSuites, group !== undefined, etm || policy.allowCbcWithoutEncryptThenMac === true);
  if (!suite) return fail(AlertDescription.handshake_failure, 'no_shared_cipher_suite');

  const encryptThenMac = etm && !suite.aead;
  const extensions: Extension[] = [];
  if (reneg === 'yes') extensions.push(encodeRenegotiationInfo());
  if (ems) extensions.push(encodeFlagExtension(ExtensionType.extended_master_secret));
  if (encryptThenMac) extensions.push(encodeFlagExtension(ExtensionType.encrypt_then_mac));
  if (suite.keyExchange === 'ecdhe_psk' && findExtension(ch.extensions, ExtensionType.ec_point_formats)) {
    extensions.push(encodeEcPointFormats([0])); // uncompressed only (RFC 8422 section 5.1.2)
  }
  return {
    suite,
    group: suite.keyExchange === 'ecdhe_psk' ? group : undefined,
    extendedMasterSecret: ems,
    encryptThenMac,
    extensions,
  };
}

export function isFailure(n: Negotiated | NegotiationFailure): n is NegotiationFailure {
  return 'alert' in n;
}

/**
 * RFC 5746: the client signals support by the SCSV or an empty renegotiation_info; the server
 * then answers with an empty renegotiation_info (OpenSSL 3 clients abort without it).
 */
function secureRenegotiation(ch: ClientHello): 'yes' | 'no' | 'invalid' {
  const ext = findExtension(ch.extensions, ExtensionType.renegotiation_info);
  if (ext) {
    const conn = parseRenegotiationInfo(ext.data);
    return conn !== undefined && conn.length === 0 ? 'yes' : 'invalid';
  }
  return ch.cipherSuites.includes(EMPTY_RENEGOTIATION_INFO_SCSV) ? 'yes' : 'no';
}

function pickGroup(ch: ClientHello, preference: readonly number[]): number | undefined {
  const ext = findExtension(ch.extensions, ExtensionType.supported_groups);
  // Without the extension the client supports any curve (RFC 8422 section 4); P-256 is the
  // one every ECDHE implementation has.
  if (!ext) return preference.includes(NamedGroup.secp256r1) ? NamedGroup.secp256r1 : preference[0];
  const offered = parseSupportedGroups(ext.data);
  if (!offered) return undefined;
  return preference.find((g) => offered.includes(g));
}

function pickSuite(ch: ClientHello, preference: readonly number[], haveGroup: boolean, cbcOk: boolean): CipherSuite | undefined {
  for (const id of preference) {
    const suite = CIPHER_SUITES.get(id);
    if (!suite || !ch.cipherSuites.includes(id)) continue;
    if (suite.keyExchange === 'ecdhe_psk' && !haveGroup) continue;
    // MAC-then-encrypt CBC keeps a Lucky-13 timing channel here: only with encrypt_then_mac.
    if (!suite.aead && !cbcOk) continue;
    return suite;
  }
  return undefined;
}

function fail(alert: number, reason: HandshakeFailure): NegotiationFailure {
  return { alert, reason };
}
