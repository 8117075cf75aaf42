/**
 * The TLS 1.2 key schedule: PRF with SHA-256 (RFC 5246 section 5), master secret (section 8.1),
 * extended master secret (RFC 7627 section 4), key block (section 6.3) and Finished verify_data
 * (section 7.4.9). Every suite this server offers uses the SHA-256 PRF, so there is no hash choice.
 */
import { HmacSha256 } from './hmac.js';
import type { CipherSuite, DirectionKeys } from './ciphers/types.js';

const SHA256_LENGTH = 32;
const MASTER_SECRET_LENGTH = 48;
const VERIFY_DATA_LENGTH = 12;

/** P_SHA256(secret, seed) truncated to `length` bytes (RFC 5246 section 5). */
export function pSha256(secret: Buffer, seed: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const hmac = new HmacSha256(secret);
  let a: Buffer = seed; // A(0)
  let written = 0;
  while (written < length) {
    a = hmac.digest(a); // A(i) = HMAC(secret, A(i-1))
    const block = hmac.digest(a, seed);
    written += block.copy(out, written, 0, Math.min(SHA256_LENGTH, length - written));
    block.fill(0);
  }
  hmac.wipe();
  return out;
}

/** PRF(secret, label, seed) = P_SHA256(secret, label ‖ seed); the label is ASCII without a terminator. */
export function prf(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  const labelLength = Buffer.byteLength(label, 'latin1');
  const labelSeed = Buffer.allocUnsafe(labelLength + seed.length);
  labelSeed.write(label, 0, 'latin1');
  seed.copy(labelSeed, labelLength);
  return pSha256(secret, labelSeed, length);
}

function joinRandoms(first: Buffer, second: Buffer): Buffer {
  const seed = Buffer.allocUnsafe(first.length + second.length);
  first.copy(seed, 0);
  second.copy(seed, first.length);
  return seed;
}

/** master_secret = PRF(pre_master_secret, "master secret", ClientHello.random ‖ ServerHello.random)[0..47]. */
export function computeMasterSecret(premaster: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return prf(premaster, 'master secret', joinRandoms(clientRandom, serverRandom), MASTER_SECRET_LENGTH);
}

/**
 * RFC 7627 section 4: the session hash replaces the randoms, binding the master secret to the
 * whole handshake. `sessionHash` is SHA-256 over every handshake message up to and including
 * ClientKeyExchange (in DTLS: with the 12-byte DTLS handshake headers, RFC 6347 section 4.2.6).
 */
export function computeExtendedMasterSecret(premaster: Buffer, sessionHash: Buffer): Buffer {
  return prf(premaster, 'extended master secret', sessionHash, MASTER_SECRET_LENGTH);
}

/**
 * key_block = PRF(master_secret, "key expansion", server_random ‖ client_random), cut in the
 * order client MAC, server MAC, client key, server key, client IV, server IV (RFC 5246 6.3).
 * The returned keys are views into one fresh buffer.
 */
export function deriveKeyBlock(
  masterSecret: Buffer,
  clientRandom: Buffer,
  serverRandom: Buffer,
  suite: CipherSuite,
): { client: DirectionKeys; server: DirectionKeys } {
  const { macKeyLength: mac, encKeyLength: enc, fixedIvLength: iv } = suite;
  const block = prf(masterSecret, 'key expansion', joinRandoms(serverRandom, clientRandom), 2 * (mac + enc + iv));
  let offset = 0;
  const take = (length: number): Buffer => block.subarray(offset, (offset += length));
  const clientMac = take(mac);
  const serverMac = take(mac);
  const clientKey = take(enc);
  const serverKey = take(enc);
  const clientIv = take(iv);
  const serverIv = take(iv);
  return {
    client: { macKey: clientMac, encKey: clientKey, fixedIv: clientIv },
    server: { macKey: serverMac, encKey: serverKey, fixedIv: serverIv },
  };
}

/** verify_data = PRF(master_secret, finished_label, Hash(handshake_messages))[0..11] (RFC 5246 7.4.9). */
export function computeVerifyData(
  masterSecret: Buffer,
  label: 'client finished' | 'server finished',
  handshakeHash: Buffer,
): Buffer {
  return prf(masterSecret, label, handshakeHash, VERIFY_DATA_LENGTH);
}
