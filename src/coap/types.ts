/**
 * LEGACY, kept only because src/dtls/server.ts and connection.ts still import it (the 'data'
 * event and `peer(address, port)`); the CoAP layer no longer uses it (see transport.ts and
 * src/dtls/session.ts). It belongs in src/dtls/ (H11's refactor), then this file goes.
 *
 * The old boundary between the DTLS server (`src/dtls/`) and the CoAP front (`src/coap/`).
 *
 * The DTLS side owns the real UDP socket, the handshakes and the record layer. The CoAP side
 * only ever sees established sessions: plaintext in, plaintext out, keyed by the peer's
 * address and port, plus who the peer proved to be.
 */

/** Who is behind an established session, as the PSK handshake proved it. */
export interface PeerIdentity {
  /** UTF-8 of the PSK identity (the device serial). */
  identity: string;
  /** The PSK identity exactly as it came off the wire (RFC 4279 section 2: opaque bytes). */
  identityBytes: Buffer;
  /** CKA_LABEL of the master key the session's PSK was derived from. */
  keyLabel: string;
  /** The negotiated cipher suite, by its IANA name (e.g. TLS_PSK_WITH_AES_128_CCM_8). */
  cipherSuite: string;
}

export type DataListener = (address: string, port: number, data: Buffer) => void;

export interface SecureEndpoint {
  /** Application data of an established session, decrypted. */
  on(event: 'data', listener: DataListener): this;
  /**
   * Optional: lets the CoAP socket detach its listener when it closes. An EventEmitter has it;
   * without it the socket just ignores data after close.
   */
  off?(event: 'data', listener: DataListener): this;
  /** Encrypts and sends to an established session; false when there is no such session. */
  send(address: string, port: number, data: Buffer): boolean;
  /** Who is behind an address and port (an established session), or undefined. */
  peer(address: string, port: number): PeerIdentity | undefined;
}
