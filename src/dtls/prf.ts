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
  return pHash(secret, [seed], length);
}

/**
 * P_SHA256 over the concatenation of `seed`: the pieces (label, randoms) are hashed where
 * they are, and each HMAC writes its block straight into the output.
 */
function pHash(secret: Buffer, seed: readonly Uint8Array[], length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const hmac = new HmacSha256(secret);
  const a = A_SCRATCH;
  const aSeed = [a, ...seed];
  hmac.digestInto(a, 0, seed); // A(1) = HMAC(secret, seed)
  for (let written = 0; written < length; ) {
    if (length - written >= SHA256_LENGTH) hmac.digestInto(out, written, aSeed);
    else {
      hmac.digestInto(LAST_SCRATCH, 0, aSeed);
      out.set(LAST_SCRATCH.subarray(0, length - written), written);
    }
    written += SHA256_LENGTH;
    if (written < length) hmac.digestInto(a, 0, A_ONLY); // A(i+1) = HMAC(secret, A(i))
  }
  a.fill(0);
  LAST_SCRATCH.fill(0);
  hmac.wipe();
  return out;
}

/** A(i) and a last partial block: scratch, since pHash runs to its end synchronously. */
const A_SCRATCH = new Uint8Array(SHA256_LENGTH);
const A_ONLY = [A_SCRATCH];
const LAST_SCRATCH = new Uint8Array(SHA256_LENGTH);

/** The labels of RFC 5246 and RFC 7627 as bytes, made once; any other label is encoded per call. */
const LABELS = new Map(
  ['master secret', 'extended master secret', 'key expansion', 'client finished', 'server finished'].map((l) => [l, Buffer.from(l, 'latin1')]),
);

/** PRF(secret, label, seed) = P_SHA256(secret, label ‖ seed); the label is ASCII without a terminator. */
export function prf(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  return labelled(secret, label, [seed], length);
}

function labelled(secret: Buffer, label: string, seed: readonly Uint8Array[], length: number): Buffer {
  return pHash(secret, [LABELS.get(label) ?? Buffer.from(label, 'latin1'), ...seed], length);
}

/** master_secret = PRF(pre_master_secret, "master secret", ClientHello.random ‖ ServerHello.random)[0..47]. */
export function computeMasterSecret(premaster: Buffer, clientRandom: Buffer, serverRandom: Buffer): Buffer {
  return labelled(premaster, 'master secret', [clientRandom, serverRandom], MASTER_SECRET_LENGTH);
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
  const block = labelled(masterSecret, 'key expansion', [serverRandom, clientRandom], 2 * (mac + enc + iv));
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
