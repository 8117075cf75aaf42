/**
 * Record protection shared by the AEAD suites (RFC 5246 6.2.3.3). The suites differ only in the
 * algorithm, the tag length and how the 12-byte nonce is built:
 *  - 'explicit' (AES-CCM RFC 6655, AES-GCM RFC 5288): fixed_iv(4) ‖ nonce_explicit(8), and the
 *    8 explicit bytes lead the fragment; we send epoch ‖ seq as they suggest for DTLS.
 *  - 'xor' (ChaCha20-Poly1305, RFC 7905 section 2): fixed_iv(12) XOR (0(4) ‖ epoch ‖ seq), nothing
 *    extra on the wire.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type CipherCCMTypes, type KeyObject } from 'node:crypto';
import type { CipherSuite, DirectionKeys, RecordProtection } from './types.js';
import { ADDITIONAL_DATA_LENGTH, writeAdditionalData, writeSeqNum } from './additional-data.js';
import { AesCcm } from './ccm.js';

export interface AeadParameters {
  readonly algorithm: 'aes-128-ccm' | 'aes-128-gcm' | 'chacha20-poly1305';
  readonly tagLength: number;
  readonly nonce: 'explicit' | 'xor';
}

const NONCE_LENGTH = 12;
const EXPLICIT_NONCE_LENGTH = 8;
const SEQ_NUM_OFFSET = NONCE_LENGTH - EXPLICIT_NONCE_LENGTH; // 4

// An empty Buffer may have no backing store (randomBytes(0) does); node then hands OpenSSL a NULL
// input, which CCM reads as "no update" and fails with "tag not set". A view of a real
// allocation is never NULL.
const EMPTY = Buffer.alloc(1).subarray(0, 0);

/** Bytes seal() adds: the explicit nonce (if any) and the tag. */
function aeadExpansion(parameters: AeadParameters): number {
  return (parameters.nonce === 'explicit' ? EXPLICIT_NONCE_LENGTH : 0) + parameters.tagLength;
}

/** A suite object for an AEAD construction; AEAD suites have no MAC key (RFC 5246 6.2.3.3). */
export function aeadSuite(
  identity: Pick<CipherSuite, 'id' | 'name' | 'keyExchange' | 'encKeyLength'>,
  parameters: AeadParameters,
): CipherSuite {
  return {
    ...identity,
    macKeyLength: 0,
    fixedIvLength: parameters.nonce === 'explicit' ? SEQ_NUM_OFFSET : NONCE_LENGTH,
    aead: true,
    maxExpansion: aeadExpansion(parameters),
    createProtection: (keys) => createAeadProtection(keys, parameters),
  };
}

export function createAeadProtection(keys: DirectionKeys, parameters: AeadParameters): RecordProtection {
  const { algorithm, tagLength } = parameters;
  const explicit = parameters.nonce === 'explicit';
  const explicitLength = explicit ? EXPLICIT_NONCE_LENGTH : 0;
  const overhead = explicitLength + tagLength;
  if (keys.fixedIv.length !== (explicit ? SEQ_NUM_OFFSET : NONCE_LENGTH)) {
    throw new RangeError(`${algorithm}: fixed IV of ${keys.fixedIv.length} bytes`);
  }
  // CCM: two long-lived AES objects instead of a cipher object per record (ccm.ts). The
  // others need a cipher object per record, made from a KeyObject.
  const ccm = algorithm === 'aes-128-ccm' ? new AesCcm(keys.encKey, tagLength) : undefined;
  const key: KeyObject | undefined = ccm ? undefined : createSecretKey(Buffer.from(keys.encKey));
  const fixedIv = Buffer.from(keys.fixedIv);
  // Typed as CCM for node's overloads: CCM needs plaintextLength in setAAD, GCM and ChaCha20 ignore it.
  const ccmAlgorithm = algorithm as CipherCCMTypes;
  const cipherOptions = { authTagLength: tagLength };
  // Scratch space reused by every call: node copies nonce and AAD synchronously.
  const nonce = Buffer.alloc(NONCE_LENGTH);
  fixedIv.copy(nonce, 0);
  const aad = Buffer.allocUnsafe(ADDITIONAL_DATA_LENGTH);
  const standardAd = (epoch: number, seq: number, type: number, version: number, length: number): Buffer => {
    writeAdditionalData(aad, epoch, seq, type, version, length);
    return aad;
  };

  const xorNonce = (epoch: number, seq: number): void => {
    writeSeqNum(nonce, SEQ_NUM_OFFSET, epoch, seq);
    for (let i = SEQ_NUM_OFFSET; i < NONCE_LENGTH; i++) nonce[i]! ^= fixedIv[i]!;
  };

  return {
    seal(type, version, epoch, seq, plaintext, additionalData) {
      if (explicit) writeSeqNum(nonce, SEQ_NUM_OFFSET, epoch, seq);
      else xorNonce(epoch, seq);
      const ad = additionalData ? additionalData(plaintext.length) : standardAd(epoch, seq, type, version, plaintext.length);
      if (ccm) {
        const sealed = Buffer.allocUnsafe(overhead + plaintext.length);
        nonce.copy(sealed, 0, SEQ_NUM_OFFSET);
        ccm.seal(nonce, ad, plaintext, sealed, explicitLength);
        return sealed;
      }
      const cipher = createCipheriv(ccmAlgorithm, key!, nonce, cipherOptions);
      cipher.setAAD(ad, { plaintextLength: plaintext.length });
      const ciphertext = cipher.update(plaintext.length === 0 ? EMPTY : plaintext);
      cipher.final(); // no output for these modes; computes the tag
      const out = Buffer.allocUnsafe(overhead + plaintext.length);
      if (explicit) nonce.copy(out, 0, SEQ_NUM_OFFSET);
      out.set(ciphertext, explicitLength);
      out.set(cipher.getAuthTag(), explicitLength + plaintext.length);
      return out;
    },

    open(type, version, epoch, seq, fragment, additionalData) {
      const length = fragment.length - overhead;
      if (length < 0) return undefined;
      // The receiver uses the nonce the sender put in the record (RFC 5288 section 3); epoch and
      // seq are bound through the additional data either way.
      if (explicit) fragment.copy(nonce, SEQ_NUM_OFFSET, 0, EXPLICIT_NONCE_LENGTH);
      else xorNonce(epoch, seq);
      const ad = additionalData ? additionalData(length) : standardAd(epoch, seq, type, version, length);
      const tagStart = explicitLength + length;
      if (ccm) return ccm.open(nonce, ad, fragment.subarray(explicitLength, tagStart), fragment.subarray(tagStart));
      try {
        const decipher = createDecipheriv(ccmAlgorithm, key!, nonce, cipherOptions);
        decipher.setAuthTag(fragment.subarray(tagStart));
        decipher.setAAD(ad, { plaintextLength: length });
        const plaintext = decipher.update(length === 0 ? EMPTY : fragment.subarray(explicitLength, tagStart));
        decipher.final(); // throws when the tag does not verify
        return plaintext;
      } catch {
        return undefined;
      }
    },
  };
}
