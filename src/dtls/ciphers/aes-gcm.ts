/** TLS_PSK_WITH_AES_128_GCM_SHA256 (RFC 5487 section 3.1, record protection from RFC 5288 section 3). */
import { aeadSuite } from './aead.js';

export const TLS_PSK_WITH_AES_128_GCM_SHA256 = aeadSuite(
  { id: 0x00a8, name: 'TLS_PSK_WITH_AES_128_GCM_SHA256', keyExchange: 'psk', encKeyLength: 16 },
  { algorithm: 'aes-128-gcm', tagLength: 16, nonce: 'explicit' },
);
