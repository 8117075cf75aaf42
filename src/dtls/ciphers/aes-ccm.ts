/** TLS_PSK_WITH_AES_128_CCM_8 and TLS_PSK_WITH_AES_128_CCM (RFC 6655 sections 3 and 4: 8- or 16-byte tag). */
import type { CipherSuite } from './types.js';
import { aeadExpansion, createAeadProtection, type AeadParameters } from './aead.js';

function ccmSuite(id: number, name: string, tagLength: 8 | 16): CipherSuite {
  const parameters: AeadParameters = { algorithm: 'aes-128-ccm', tagLength, nonce: 'explicit' };
  return {
    id,
    name,
    keyExchange: 'psk',
    macKeyLength: 0,
    encKeyLength: 16,
    fixedIvLength: 4,
    aead: true,
    maxExpansion: aeadExpansion(parameters),
    createProtection: (keys) => createAeadProtection(keys, parameters),
  };
}

export const TLS_PSK_WITH_AES_128_CCM_8 = ccmSuite(0xc0a8, 'TLS_PSK_WITH_AES_128_CCM_8', 8);
export const TLS_PSK_WITH_AES_128_CCM = ccmSuite(0xc0a4, 'TLS_PSK_WITH_AES_128_CCM', 16);
