/**
 * What the DTLS layer needs from whoever knows the devices' keys: a function from the PSK
 * identity (opaque bytes, RFC 4279 section 2) to the keys the device may hold. The layer above
 * (`src/server.ts`) adapts its key store to it; nothing here knows where keys come from.
 */

/** One key the peer may hold; several while the key store rotates its keys. */
export interface PskKey {
  /** The PSK bytes as the premaster secret uses them. The handshake zeroes them when done. */
  readonly psk: Buffer;
  /** Opaque to DTLS: handed back as the session's `pskTag` when this key's Finished verifies. */
  readonly tag: string;
}

/** Why a lookup has no key for an identity: each is its own reason code in logs and metrics. */
export type PskRefusal = 'unknown_psk_identity' | 'identity_denied' | 'identity_pattern_mismatch';

/**
 * The candidate keys for an identity, the preferred one first. No key (an empty array, or a
 * refusal saying why) fails the handshake with unknown_psk_identity. A rejection is an
 * infrastructure fault (internal_error), and fails only this handshake.
 */
export type PskLookup = (identity: Buffer) => Promise<readonly PskKey[] | { readonly refused: PskRefusal }>;

/**
 * Whether an identity is refused without looking up its key (deny list, identity pattern):
 * cheap and synchronous, no HSM call. A resumed handshake skips the key lookup, not this check.
 */
export type PskRefusedCheck = (identity: Buffer) => PskRefusal | undefined;
