/**
 * The contract between the DTLS handshake and whatever knows the devices' keys.
 *
 * A PSK identity is opaque bytes on the wire (RFC 4279 section 2); for this project it is
 * the device's serial number in UTF-8. Resolvers take the raw bytes so that the derivation
 * runs over exactly what the device sent, never over a lossy string round trip.
 */

/** One key a device may hold. Several exist while a master key is being rotated. */
export interface PskCandidate {
  /** The PSK bytes as the DTLS premaster secret uses them (already encoded: raw or hex). */
  readonly psk: Buffer;
  /** CKA_LABEL of the master key this PSK was derived from (what handlers see as keyLabel). */
  readonly keyLabel: string;
}

export interface KeyResolver {
  /**
   * The candidate keys for an identity, newest master key first.
   * An empty array means the identity is unknown: the handshake answers unknown_psk_identity.
   * Rejects only on an infrastructure fault (HSM gone, timeout); the handshake then fails
   * with internal_error and no other peer is affected.
   */
  resolve(identity: Buffer): Promise<PskCandidate[]>;
  /** Releases sessions, zeroes cached keys. Idempotent. */
  close(): Promise<void>;
  /** Re-reads whatever the resolver reads from files (the deny list); the server calls it on SIGHUP. */
  reload?(): Promise<number>;
}

/** How the 16 derived bytes become the PSK the device holds. */
export type KeyEncoding = 'raw' | 'hex';
