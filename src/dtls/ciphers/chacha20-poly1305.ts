/** TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 (RFC 7905): 12-byte fixed IV XORed with the seq_num. */
import type { CipherSuite } from './types.js';
import { aeadExpansion, createAeadProtection, type AeadParameters } from './aead.js';

const parameters: AeadParameters = { algorithm: 'chacha20-poly1305', tagLength: 16, nonce: 'xor' };

export const TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256: CipherSuite = {
  id: 0xccac,
  name: 'TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256',
  keyExchange: 'ecdhe_psk',
  macKeyLength: 0,
  encKeyLength: 32,
  fixedIvLength: 12,
  aead: true,
  maxExpansion: aeadExpansion(parameters),
  createProtection: (keys) => createAeadProtection(keys, parameters),
};
