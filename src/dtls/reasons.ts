/**
 * The fixed set of reason codes for failed handshakes and dropped datagrams. They are metric
 * labels (a bounded set, so a flood of odd input cannot grow the label space) and the `reason`
 * field of log lines; free-text detail, when there is any, goes in a separate `detail` field.
 */

/** Why a handshake that passed the cookie exchange (or its negotiation) ended without a session. */
export const HANDSHAKE_FAILURES = [
  // ClientHello negotiation (RFC 5246 7.4.1.3, RFC 7627, RFC 5746)
  'protocol_version',
  'no_null_compression',
  'malformed_extension',
  'extended_master_secret_required',
  'bad_renegotiation_info',
  'no_shared_cipher_suite',
  // flight 5
  'malformed_handshake',
  'inconsistent_fragments',
  'unexpected_message',
  'identity_length',
  'invalid_ecdhe_key',
  'key_lookup_queue_full',
  'key_lookup_timeout',
  'key_lookup_failed',
  // PskRefusal
  'unknown_psk_identity',
  'identity_denied',
  'identity_pattern_mismatch',
  // Finished (RFC 5246 7.4.9)
  'finished_unreadable',
  'finished_mismatch',
  'record_overflow',
  // the peer or the clock
  'peer_alert',
  'peer_stopped_answering',
  'handshake_timeout',
  'server_closing',
  'superseded',
] as const;
export type HandshakeFailure = (typeof HANDSHAKE_FAILURES)[number];

/** Why a datagram or record was dropped without an answer worth a handshake. */
export const DROP_REASONS = [
  'malformed',
  'no_session',
  'bad_cookie_hello',
  'fragmented_hello',
  'handshake_limit',
  'rate_limited',
  'key_lookup_queue_full',
  'closing',
  'stale_hello',
  'renegotiation_refused',
  'sequence_exhausted',
  'internal',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
