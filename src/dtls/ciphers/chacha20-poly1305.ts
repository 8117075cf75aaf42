/** TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 (RFC 7905): 12-byte fixed IV XORed with the seq_num. */
import { aeadSuite } from './aead.js';

export const TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 = aeadSuite(
  { id: 0xccac, name: 'TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256', keyExchange: 'ecdhe_psk', encKeyLength: 32 },
  { algorithm: 'chacha20-poly1305', tagLength: 16, nonce: 'xor' },
);
