/** Wire constants, named as in RFC 5246, RFC 6347, RFC 4279, RFC 8422 and the IANA TLS registry. */

export const ContentType = {
  change_cipher_spec: 20,
  alert: 21,
  handshake: 22,
  application_data: 23,
  /** RFC 9146 section 4: a protected record that carries a Connection ID. */
  tls12_cid: 25,
} as const;

export const HandshakeType = {
  hello_request: 0,
  client_hello: 1,
  server_hello: 2,
  hello_verify_request: 3,
  /** RFC 5077 section 3.3. */
  new_session_ticket: 4,
  server_key_exchange: 12,
  server_hello_done: 14,
  client_key_exchange: 16,
  finished: 20,
} as const;

/** DTLS 1.2 is {254, 253}; DTLS 1.0 is {254, 255} and may appear on a first ClientHello's record. */
export const DTLS_1_2 = 0xfefd;
export const DTLS_1_0 = 0xfeff;

export const AlertLevel = { warning: 1, fatal: 2 } as const;

export const AlertDescription = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  illegal_parameter: 47,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  no_renegotiation: 100,
  unsupported_extension: 110,
  unknown_psk_identity: 115,
} as const;

export const ExtensionType = {
  server_name: 0,
  supported_groups: 10, // "elliptic_curves" in RFC 4492
  ec_point_formats: 11,
  signature_algorithms: 13,
  encrypt_then_mac: 22,
  extended_master_secret: 23,
  session_ticket: 35,
  /** RFC 9146 section 3 (not draft-05's 53). */
  connection_id: 54,
  renegotiation_info: 0xff01,
} as const;

export const NamedGroup = {
  secp256r1: 23,
  x25519: 29,
} as const;

/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 section 3.3). */
export const EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;

export const RECORD_HEADER_LENGTH = 13;
export const HANDSHAKE_HEADER_LENGTH = 12;
