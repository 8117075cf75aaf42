/**
 * Every knob of the DTLS server, with its default and the reason for it. The CLI and the
 * library API both fill this in; nothing else in `src/dtls/` reads the environment.
 */
import { DEFAULT_SUITE_PREFERENCE } from './ciphers/index.js';
import { DEFAULT_RETRANSMIT, type RetransmitPolicy } from './flight.js';
import { DEFAULT_GROUPS } from './negotiation.js';
import { DEFAULT_CID_LENGTH } from './cid-factory.js';

export interface DtlsServerConfig {
  /** Cipher suites by IANA value, most preferred first. */
  cipherSuites: readonly number[];
  /** ECDHE groups, most preferred first (x25519, secp256r1). */
  groups: readonly number[];
  /** psk_identity_hint sent in ServerKeyExchange; empty means none (and no PSK ServerKeyExchange). */
  identityHint: Buffer;
  /** Refuse clients that do not offer RFC 7627's extended master secret. */
  requireExtendedMasterSecret: boolean;
  /**
   * Choose TLS_PSK_WITH_AES_128_CBC_SHA256 also for a client that does not offer RFC 7366
   * encrypt_then_mac. Off: MAC-then-encrypt CBC here still has a Lucky-13 timing channel (the
   * number of SHA-256 compressions depends on the padding), so such a client gets another
   * suite or handshake_failure. On only for a device that can do nothing else.
   */
  allowCbcWithoutEncryptThenMac: boolean;
  /** Path MTU in bytes, IP and UDP headers included; flights are fragmented to fit. */
  mtu: number;
  /** An established session with no traffic for this long is closed. */
  idleTimeoutMs: number;
  /**
   * A handshake not finished this long after its cookie-verified ClientHello is dropped, and
   * flight 4 is not retransmitted past it: with the default policy (1 s, doubling) it goes out
   * at 0, 1, 3, 7 and 15 s, and the handshake ends at 30 s with reason handshake_timeout.
   */
  handshakeTimeoutMs: number;
  retransmit: RetransmitPolicy;
  /** Established sessions at most; past it the idlest one is evicted for a new handshake. */
  maxSessions: number;
  /** Handshakes in progress at most; past it new ClientHellos (with valid cookies) are refused. */
  maxHandshakes: number;
  /** Key lookups (HSM derivations) waiting at once; past it new handshakes are refused with an alert. */
  maxPendingKeyLookups: number;
  /** A key lookup that has not answered after this long fails its handshake (internal_error). */
  keyLookupTimeoutMs: number;
  /** Handshakes per second per source IP address (0: no limit), and the burst allowed above it. */
  handshakeRatePerSource: number;
  handshakeBurstPerSource: number;
  /** Records a handshake queues while its key lookup runs. */
  maxQueuedRecords: number;
  /** Bytes of partially received handshake messages per handshake. */
  maxReassemblyBytes: number;
  /** Longest PSK identity accepted (RFC 4279 section 5.3: at least 128 must be supported). */
  maxIdentityLength: number;
  /** How often the HelloVerifyRequest cookie secret changes. */
  cookieRotationMs: number;
  /** UDP socket buffers; the kernel default overflows at a few hundred outstanding requests. */
  recvBufferSize: number;
  sendBufferSize: number;
  /**
   * Length of the Connection IDs this server asks its peers to send (RFC 9146), 4..255 bytes;
   * 0 turns CID off (a client's connection_id offer is then not answered).
   */
  cidLength: number;
  /**
   * Issue and accept session IDs and session tickets (RFC 5246 7.3, RFC 5077): a resumed
   * handshake needs no key lookup. Off: every handshake is a full one, whatever clients offer.
   */
  resumption: boolean;
  /** How long a ticket or a cached session resumes, from its full handshake. */
  ticketLifetimeMs: number;
  /** Sessions kept for resumption by session ID (0: none; tickets still work). */
  sessionCacheMax: number;
  /**
   * The longest run, in ms, of handshake work finished after a key lookup (handshake-work.ts)
   * in one turn of the event loop; the socket is read between runs, so requests of established
   * sessions wait at most about this long behind handshakes. 0 runs that work as soon as the
   * lookup answers.
   */
  handshakeSliceMs: number;
}

export const DEFAULT_DTLS_CONFIG: DtlsServerConfig = {
  cipherSuites: DEFAULT_SUITE_PREFERENCE,
  groups: DEFAULT_GROUPS,
  identityHint: Buffer.alloc(0),
  requireExtendedMasterSecret: false,
  allowCbcWithoutEncryptThenMac: false,
  mtu: 1280, // the IPv6 minimum: safe on any path without discovery
  idleTimeoutMs: 10 * 60_000,
  handshakeTimeoutMs: 30_000,
  retransmit: DEFAULT_RETRANSMIT,
  maxSessions: 100_000,
  maxHandshakes: 10_000,
  maxPendingKeyLookups: 256,
  keyLookupTimeoutMs: 5_000,
  handshakeRatePerSource: 50,
  handshakeBurstPerSource: 100,
  maxQueuedRecords: 16,
  maxReassemblyBytes: 16_384,
  maxIdentityLength: 128,
  cookieRotationMs: 60_000,
  recvBufferSize: 4 * 1024 * 1024,
  sendBufferSize: 4 * 1024 * 1024,
  cidLength: DEFAULT_CID_LENGTH,
  resumption: true,
  ticketLifetimeMs: 24 * 3600_000, // a day of sleep between wake-ups (docs/resumption.md)
  sessionCacheMax: 100_000,
  handshakeSliceMs: 0.5, // two or three handshakes' worth (~0.2 ms each)
};
