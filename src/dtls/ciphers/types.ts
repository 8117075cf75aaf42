/**
 * Cipher suite contract shared by the record layer (server and load-generator client).
 *
 * Every suite here uses the TLS 1.2 PRF with SHA-256 (RFC 5246 section 5), so the key block
 * is client_write_MAC_key ‖ server_write_MAC_key ‖ client_write_key ‖ server_write_key ‖
 * client_write_IV ‖ server_write_IV, with the lengths below.
 */

export type KeyExchange = 'psk' | 'ecdhe_psk';

/** Keys of one direction (one connection end's write state). */
export interface DirectionKeys {
  readonly macKey: Buffer; // empty for AEAD suites
  readonly encKey: Buffer;
  readonly fixedIv: Buffer; // the "implicit" part of the nonce (4 bytes for CCM/GCM, 12 for ChaCha20)
}

/**
 * Protection of the records of one direction and one epoch.
 * `seq` is the 48-bit DTLS sequence number; together with `epoch` it is the 64-bit
 * seq_num of RFC 6347 section 4.1.2.1 that the MAC / additional data cover.
 */
export interface RecordProtection {
  /** Returns the record fragment to put on the wire (explicit nonce or IV, ciphertext, tag or MAC). */
  seal(type: number, version: number, epoch: number, seq: number, plaintext: Buffer, additionalData?: AdditionalData): Buffer;
  /** Returns the plaintext, or undefined when the fragment does not authenticate or is malformed. Never throws. */
  open(type: number, version: number, epoch: number, seq: number, fragment: Buffer, additionalData?: AdditionalData): Buffer | undefined;
}

/**
 * Replaces the 13-byte additional data (the MAC header of the CBC suite) when a record format
 * defines its own, as RFC 9146 does for tls12_cid records (src/dtls/cid-protection.ts). It gets
 * the length the suite would have put there: the plaintext length for AEAD and MAC-then-encrypt,
 * the IV ‖ ciphertext length for encrypt-then-MAC.
 */
export type AdditionalData = (length: number) => Buffer;

export interface CipherSuite {
  /** IANA value, e.g. 0xC0A8. */
  readonly id: number;
  /** IANA name, e.g. TLS_PSK_WITH_AES_128_CCM_8. */
  readonly name: string;
  readonly keyExchange: KeyExchange;
  readonly macKeyLength: number;
  readonly encKeyLength: number;
  readonly fixedIvLength: number;
  /** True for CCM/GCM/ChaCha20; false for the CBC-HMAC suite. */
  readonly aead: boolean;
  /** Largest number of bytes seal() adds to a plaintext (for MTU arithmetic). */
  readonly maxExpansion: number;
  createProtection(keys: DirectionKeys, options: { encryptThenMac: boolean }): RecordProtection;
}
