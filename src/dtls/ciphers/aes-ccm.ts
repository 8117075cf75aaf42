/** TLS_PSK_WITH_AES_128_CCM_8 and TLS_PSK_WITH_AES_128_CCM (RFC 6655 sections 3 and 4: 8- or 16-byte tag). */
import { aeadSuite } from './aead.js';

export const TLS_PSK_WITH_AES_128_CCM_8 = aeadSuite(
  { id: 0xc0a8, name: 'TLS_PSK_WITH_AES_128_CCM_8', keyExchange: 'psk', encKeyLength: 16 },
  { algorithm: 'aes-128-ccm', tagLength: 8, nonce: 'explicit' },
);

export const TLS_PSK_WITH_AES_128_CCM = aeadSuite(
  { id: 0xc0a4, name: 'TLS_PSK_WITH_AES_128_CCM', keyExchange: 'psk', encKeyLength: 16 },
  { algorithm: 'aes-128-ccm', tagLength: 16, nonce: 'explicit' },
);
