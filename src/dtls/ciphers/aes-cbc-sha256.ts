/**
 * TLS_PSK_WITH_AES_128_CBC_SHA256 (RFC 5487 section 3.2): AES-128-CBC with an explicit random IV
 * per record (RFC 5246 6.2.3.2) and HMAC-SHA256 over
 * seq_num ‖ type ‖ version ‖ length ‖ content (RFC 5246 6.2.3.1, seq_num = epoch ‖ seq in DTLS).
 *
 * With encrypt_then_mac negotiated (RFC 7366) the MAC covers IV ‖ ciphertext and is checked
 * before anything is decrypted. Without it (MAC-then-encrypt) open() checks padding and MAC
 * both, always, and hashes as many bytes whatever the padding; but the number of SHA-256
 * compressions still depends on the padding length (Lucky Thirteen), so the server picks this
 * suite without encrypt_then_mac only when DtlsServerConfig.allowCbcWithoutEncryptThenMac is on.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  randomFillSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import type { AdditionalData, CipherSuite, DirectionKeys, RecordProtection } from './types.js';
import { ADDITIONAL_DATA_LENGTH, writeAdditionalData } from './additional-data.js';

const BLOCK = 16;
const MAC_LENGTH = 32;
const MAX_PADDING = 256; // padding_length byte plus up to 255 padding bytes

/** Bytes of padding (including the padding_length byte) that bring `length` to a block boundary. */
function paddingFor(length: number): number {
  return BLOCK - (length % BLOCK);
}

function createCbcProtection(keys: DirectionKeys, options: { encryptThenMac: boolean }): RecordProtection {
  if (keys.encKey.length !== 16 || keys.macKey.length !== MAC_LENGTH) {
    throw new RangeError('AES-128-CBC-SHA256: wrong key lengths');
  }
  const encKey: KeyObject = createSecretKey(Buffer.from(keys.encKey));
  const macKey: KeyObject = createSecretKey(Buffer.from(keys.macKey));
  const standardHeader = Buffer.allocUnsafe(ADDITIONAL_DATA_LENGTH);
  /** The MAC header of the record at hand, set by setHeader() before each mac(). */
  let header: Buffer = standardHeader;
  /** RFC 5246's 13 bytes, or the caller's additional data (RFC 9146 tls12_cid records). */
  const setHeader = (
    epoch: number, seq: number, type: number, version: number, length: number, additionalData: AdditionalData | undefined,
  ): void => {
    if (additionalData) {
      header = additionalData(length);
      return;
    }
    writeAdditionalData(standardHeader, epoch, seq, type, version, length);
    header = standardHeader;
  };

  const mac = (data: Buffer): Buffer => createHmac('sha256', macKey).update(header).update(data).digest();

  /** Encrypts out[BLOCK, BLOCK + length) in place, with out[0, BLOCK) as the IV. */
  const encryptInPlace = (out: Buffer, length: number): void => {
    const cipher = createCipheriv('aes-128-cbc', encKey, out.subarray(0, BLOCK));
    cipher.setAutoPadding(false);
    out.set(cipher.update(out.subarray(BLOCK, BLOCK + length)), BLOCK);
    // final() would return nothing: the input is block-aligned and padding is ours.
  };

  const decrypt = (iv: Buffer, ciphertext: Buffer): Buffer => {
    const decipher = createDecipheriv('aes-128-cbc', encKey, iv);
    decipher.setAutoPadding(false);
    return decipher.update(ciphertext);
  };

  const writePadding = (out: Buffer, start: number, padding: number): void => {
    out.fill(padding - 1, start, start + padding);
  };

  if (options.encryptThenMac) {
    return {
      seal(type, version, epoch, seq, plaintext, additionalData) {
        const padding = paddingFor(plaintext.length);
        const encrypted = plaintext.length + padding;
        const out = Buffer.allocUnsafe(BLOCK + encrypted + MAC_LENGTH);
        randomFillSync(out, 0, BLOCK);
        plaintext.copy(out, BLOCK);
        writePadding(out, BLOCK + plaintext.length, padding);
        encryptInPlace(out, encrypted);
        setHeader(epoch, seq, type, version, BLOCK + encrypted, additionalData);
        out.set(mac(out.subarray(0, BLOCK + encrypted)), BLOCK + encrypted);
        return out;
      },

      open(type, version, epoch, seq, fragment, additionalData) {
        const macStart = fragment.length - MAC_LENGTH;
        const encrypted = macStart - BLOCK;
        if (encrypted < BLOCK || encrypted % BLOCK !== 0) return undefined;
        try {
          setHeader(epoch, seq, type, version, macStart, additionalData);
          if (!timingSafeEqual(mac(fragment.subarray(0, macStart)), fragment.subarray(macStart))) return undefined;
          // Authenticated: from here on nothing an attacker sends reaches the padding check.
          const padded = decrypt(fragment.subarray(0, BLOCK), fragment.subarray(BLOCK, macStart));
          const padding = padded[encrypted - 1]! + 1;
          if (padding > encrypted) return undefined;
          for (let i = encrypted - padding; i < encrypted - 1; i++) {
            if (padded[i] !== padding - 1) return undefined;
          }
          return padded.subarray(0, encrypted - padding);
        } catch {
          return undefined;
        }
      },
    };
  }

  return {
    seal(type, version, epoch, seq, plaintext, additionalData) {
      const padding = paddingFor(plaintext.length + MAC_LENGTH);
      const encrypted = plaintext.length + MAC_LENGTH + padding;
      const out = Buffer.allocUnsafe(BLOCK + encrypted);
      randomFillSync(out, 0, BLOCK);
      setHeader(epoch, seq, type, version, plaintext.length, additionalData);
      plaintext.copy(out, BLOCK);
      out.set(mac(plaintext), BLOCK + plaintext.length);
      writePadding(out, BLOCK + plaintext.length + MAC_LENGTH, padding);
      encryptInPlace(out, encrypted);
      return out;
    },

    open(type, version, epoch, seq, fragment, additionalData) {
      const encrypted = fragment.length - BLOCK;
      // Public facts only: the smallest record is one MAC and one padding byte, block-aligned.
      if (encrypted < MAC_LENGTH + 1 || encrypted % BLOCK !== 0) return undefined;
      try {
        const padded = decrypt(fragment.subarray(0, BLOCK), fragment.subarray(BLOCK));
        const padValue = padded[encrypted - 1]!;
        // 1 when padding_length + 1 + MAC does not fit in the record.
        let bad = ((encrypted - MAC_LENGTH - 1 - padValue) >> 31) & 1;
        // Look at every byte that could be padding, whatever padValue says.
        const scan = Math.min(MAX_PADDING, encrypted - MAC_LENGTH);
        let diff = 0;
        for (let i = 0; i < scan; i++) {
          const inPadding = ((i - padValue - 1) >> 31) & 1; // i <= padValue
          diff |= (padded[encrypted - 1 - i]! ^ padValue) * inPadding;
        }
        bad |= ((diff | -diff) >>> 31) & 1;
        // Bad padding: take the MAC as if there were no padding (RFC 5246 6.2.3.2 implementation note).
        const padLength = padValue & (bad - 1);
        const contentLength = encrypted - MAC_LENGTH - 1 - padLength;
        setHeader(epoch, seq, type, version, contentLength, additionalData);
        const expected = mac(padded.subarray(0, contentLength));
        // Hash the bytes the padding took away too. This evens out the bytes hashed, not the
        // number of SHA-256 compressions (two HMACs have their own fixed cost, and the split
        // point moves the block boundaries), so a Lucky-13 timing difference remains: that is
        // why the server chooses this suite without encrypt_then_mac only when configured to
        // (DtlsServerConfig.allowCbcWithoutEncryptThenMac). With encrypt_then_mac the MAC is
        // checked over the ciphertext before any padding is looked at.
        createHmac('sha256', macKey).update(padded.subarray(contentLength, contentLength + padLength)).digest();
        const macOk = timingSafeEqual(expected, padded.subarray(contentLength, contentLength + MAC_LENGTH));
        return (Number(macOk) & (bad ^ 1)) === 1 ? padded.subarray(0, contentLength) : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

export const TLS_PSK_WITH_AES_128_CBC_SHA256: CipherSuite = {
  id: 0x00ae,
  name: 'TLS_PSK_WITH_AES_128_CBC_SHA256',
  keyExchange: 'psk',
  macKeyLength: MAC_LENGTH,
  encKeyLength: 16,
  fixedIvLength: 0, // explicit IV in every record; TLS 1.2 derives no IV for block ciphers
  aead: false,
  maxExpansion: BLOCK + MAC_LENGTH + BLOCK, // IV, MAC, at most one block of padding
  createProtection: createCbcProtection,
};
