/** TLS_PSK_WITH_AES_128_GCM_SHA256 (RFC 5487 section 3.1, record protection from RFC 5288 section 3). */
import type { CipherSuite } from './types.js';
import { aeadExpansion, createAeadProtection, type AeadParameters } from './aead.js';

const parameters: AeadParameters = { algorithm: 'aes-128-gcm', tagLength: 16, nonce: 'explicit' };

export const TLS_PSK_WITH_AES_128_GCM_SHA256: CipherSuite = {
  id: 0x00a8,
  name: 'TLS_PSK_WITH_AES_128_GCM_SHA256',
  keyExchange: 'psk',
  macKeyLength: 0,
  encKeyLength: 16,
  fixedIvLength: 4,
  aead: true,
  maxExpansion: aeadExpansion(parameters),
  createProtection: (keys) => createAeadProtection(keys, parameters),
};
