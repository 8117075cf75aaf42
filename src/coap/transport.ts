/**
 * What the CoAP layer needs from the secure session under it, and who the session proved the
 * peer to be. A `DtlsSession` (src/dtls/session.ts) satisfies `CoapTransport` as it is; the
 * session object, not its address, keys every piece of CoAP state (RFC 7252 9.1.2).
 */

export interface CoapTransport {
  readonly address: string;
  readonly port: number;
  /** False once the session has ended: nothing is sent to it from then on. */
  readonly isOpen: boolean;
  /** One CoAP message as one record; false when it could not be sent. */
  send(data: Buffer): boolean;
}

/** Who is behind a session, as the PSK handshake proved it (fixed for the session's life). */
export interface PeerIdentity {
  /** UTF-8 of the PSK identity (the device serial, or what the identity pattern maps). */
  readonly identity: string;
  /** The PSK identity exactly as it came off the wire (RFC 4279 section 2: opaque bytes). */
  readonly identityBytes: Buffer;
  /** Label of the master key the session's PSK was derived from (the DTLS session's pskTag). */
  readonly keyLabel: string;
  /** The negotiated cipher suite, by its IANA name (e.g. TLS_PSK_WITH_AES_128_CCM_8). */
  readonly cipherSuite: string;
  /** The serial the key was derived from: the identity pattern's `serial` group, or the identity. */
  readonly serial: string;
  /** The identity pattern's named groups (`serial` included); `{ serial: identity }` without one. */
  readonly identityParts: Readonly<Record<string, string>>;
}
