/**
 * Known answers for psk = AES-128-CBC(master, IV 0, MD5(serial)).
 * The first two are from issue 3. The others were computed independently with OpenSSL:
 *
 *   K=00112233445566778899AABBCCDDEEFF; IV=00000000000000000000000000000000
 *   printf '%s' "$SERIAL" | openssl md5 -binary | openssl enc -aes-128-cbc -nopad -K $K -iv $IV | xxd -p
 *
 * with SERIAL='' (empty), 'Gerät-ÄÖÜ-€-日本' (UTF-8, 24 bytes) and
 * "$(printf 'S%.0s' $(seq 128))" (128 × 'S', the longest serial the factory accepts).
 * KCV: printf '\0%.0s' $(seq 16) | openssl enc -aes-128-ecb -nopad -K $K | xxd -p | cut -c1-6
 */
export const MASTER_HEX = '00112233445566778899AABBCCDDEEFF';
export const MASTER_KCV = 'fde4fb';

export const VECTORS: { name: string; serial: string; psk: string }[] = [
  { name: 'issue vector SN12345', serial: 'SN12345', psk: '612b3b3f59f516b24a2c831168f701ea' },
  { name: 'issue vector SN134535', serial: 'SN134535', psk: '975b82f23f96d87dfc953109ad38ce3d' },
  { name: 'empty serial', serial: '', psk: '1540732783270a5e29327106272c7c35' },
  { name: 'non-ASCII serial', serial: 'Gerät-ÄÖÜ-€-日本', psk: 'b627d23bcba9bedb9a85df4d39cf3923' },
  { name: '128-byte serial', serial: 'S'.repeat(128), psk: '445408e8a70ea449e12b5e27374b076e' },
];

/** A second master key for rotation tests (any 16 bytes). */
export const OLD_MASTER_HEX = '0f0e0d0c0b0a09080706050403020100';
