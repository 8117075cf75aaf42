/**
 * What the DTLS layer hands to whatever runs above it (the CoAP message layer, via
 * `src/server.ts`): one object per established DTLS session. The session, not the peer's
 * address, is the unit that application state hangs on: a rebooted device on the same
 * address:port is a new session object, and a session whose peer address changes (RFC 9146
 * Connection ID) stays the same object.
 *
 * DtlsServer events built on it:
 *   'session-open'  (session: DtlsSession)                  once, when the handshake completes
 *   'session-data'  (session: DtlsSession, data: Buffer)    each authenticated application record
 *   'session-close' (session: DtlsSession, reason: string)  once; send() is false from then on
 *   'session-address' (session: DtlsSession, previous: { address, port })
 *                     the peer moved (RFC 9146 Connection ID, section 6): session.address and
 *                     port are already the new ones, and send() goes there
 */
export interface DtlsSession {
  /** Where the peer's newest authenticated record came from; may change over the session's life. */
  readonly address: string;
  readonly port: number;
  /** The PSK identity exactly as it came off the wire (RFC 4279 section 2: opaque bytes). */
  readonly identity: Buffer;
  /** The PSK identity decoded as UTF-8. */
  readonly identityText: string;
  /** Opaque tag the PSK lookup returned with the key (the server puts the master key's label there). */
  readonly pskTag: string;
  /** The negotiated cipher suite, by its IANA name (e.g. TLS_PSK_WITH_AES_128_CCM_8). */
  readonly cipherSuite: string;
  /**
   * Set when the session came from an abbreviated handshake (RFC 5246 7.3): resumed from a
   * session ID the server cached, or from a session ticket (RFC 5077). Identity and pskTag are
   * the original session's.
   */
  readonly resumed?: 'id' | 'ticket';
  /** True from 'session-open' until 'session-close'. */
  readonly isOpen: boolean;
  /** Encrypts and sends one record of application data; false once the session has ended. */
  send(data: Buffer): boolean;
}

/**
 * The same facts as one frozen object, for callers that still look a session up by address
 * and port (`DtlsServer.peer`): built once per session, at the end of its handshake.
 */
export interface PeerDescription {
  /** The PSK identity decoded as UTF-8. */
  readonly identity: string;
  /** The PSK identity exactly as it came off the wire. */
  readonly identityBytes: Buffer;
  /** Opaque tag the PSK lookup returned with the key. */
  readonly pskTag: string;
  readonly cipherSuite: string;
}
