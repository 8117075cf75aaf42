/** The cipher suites this project implements, by IANA value and by name. */
import type { CipherSuite } from './types.js';
import { TLS_PSK_WITH_AES_128_CCM, TLS_PSK_WITH_AES_128_CCM_8 } from './aes-ccm.js';
import { TLS_PSK_WITH_AES_128_GCM_SHA256 } from './aes-gcm.js';
import { TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 } from './chacha20-poly1305.js';
import { TLS_PSK_WITH_AES_128_CBC_SHA256 } from './aes-cbc-sha256.js';

export {
  TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
  TLS_PSK_WITH_AES_128_CBC_SHA256,
  TLS_PSK_WITH_AES_128_CCM,
  TLS_PSK_WITH_AES_128_CCM_8,
  TLS_PSK_WITH_AES_128_GCM_SHA256,
};
export type { CipherSuite, DirectionKeys, KeyExchange, RecordProtection } from './types.js';

const ALL: readonly CipherSuite[] = [
  TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
  TLS_PSK_WITH_AES_128_CCM_8,
  TLS_PSK_WITH_AES_128_CCM,
  TLS_PSK_WITH_AES_128_GCM_SHA256,
  TLS_PSK_WITH_AES_128_CBC_SHA256,
];

export const CIPHER_SUITES: ReadonlyMap<number, CipherSuite> = new Map(ALL.map((suite) => [suite.id, suite]));

/** Server preference: ChaCha20 (forward secrecy), then CCM_8 (what constrained CoAP devices speak, RFC 7925). */
export const DEFAULT_SUITE_PREFERENCE: readonly number[] = [0xccac, 0xc0a8, 0xc0a4, 0x00a8, 0x00ae];

// OpenSSL spellings, so that a setting copied from an `openssl s_client -cipher` line also works.
const OPENSSL_NAMES: ReadonlyMap<string, CipherSuite> = new Map([
  ['ECDHE-PSK-CHACHA20-POLY1305', TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256],
  ['PSK-AES128-CCM8', TLS_PSK_WITH_AES_128_CCM_8],
  ['PSK-AES128-CCM', TLS_PSK_WITH_AES_128_CCM],
  ['PSK-AES128-GCM-SHA256', TLS_PSK_WITH_AES_128_GCM_SHA256],
  ['PSK-AES128-CBC-SHA256', TLS_PSK_WITH_AES_128_CBC_SHA256],
]);

const BY_NAME: ReadonlyMap<string, CipherSuite> = new Map([
  ...ALL.map((suite): [string, CipherSuite] => [suite.name, suite]),
  ...OPENSSL_NAMES,
]);

/** Looks a suite up by IANA name (e.g. TLS_PSK_WITH_AES_128_CCM_8) or OpenSSL name, ignoring case. */
export function suiteByName(name: string): CipherSuite | undefined {
  return BY_NAME.get(name.trim().toUpperCase());
}
