/**
 * What `npm start` prints once it serves: the exact coap-client command that gets a /whoami
 * answer from this server, for a sample serial whose key is derived on the spot. Only for the
 * development token (`serve --init-dev`): that key belongs to a throw-away token and a made-up
 * serial. The master key and the PIN are never printed.
 */
import type { KeyResolver, KeyEncoding } from '../keys/types.js';

export const SAMPLE_SERIAL = 'SN12345';

/** The address a client on this machine uses for a wildcard or given bind address, as a URI host. */
export function clientHost(bound: string): string {
  if (bound === '0.0.0.0') return '127.0.0.1';
  if (bound === '::') return '[::1]';
  return bound.includes(':') ? `[${bound}]` : bound;
}

export async function firstRunHint(keys: KeyResolver, encoding: KeyEncoding, bound: { address: string; port: number }): Promise<string> {
  const candidates = await keys.resolve(Buffer.from(SAMPLE_SERIAL, 'utf8'));
  const candidate = candidates[0];
  if (!candidate) return '';
  const host = clientHost(bound.address);
  const authority = bound.port === 5684 ? host : `${host}:${bound.port}`;
  const lines = ['', `Try it: the key of the sample serial ${SAMPLE_SERIAL} on this development token is derived below (any serial works;`,
    `get one with \`npx coap-psk derive --key-only SERIAL\` in another terminal of this clone).`];
  if (encoding === 'hex') {
    const key = candidate.psk.toString('ascii');
    lines.push(`  coap-client-openssl -u ${SAMPLE_SERIAL} -k ${key} coaps://${authority}/whoami`);
  } else {
    // raw keys are 16 bytes that coap-client -k cannot take; openssl s_client takes them in hex.
    const key = candidate.psk.toString('hex');
    lines.push(`  openssl s_client -dtls1_2 -psk_identity ${SAMPLE_SERIAL} -psk ${key} -cipher PSK-AES128-CCM8 -connect ${host}:${bound.port}`,
      `  (keys are served raw here, which coap-client -k cannot use; COAP_PSK_KEY_ENCODING=hex npm start for coap-client)`);
  }
  for (const c of candidates) c.psk.fill(0);
  lines.push('Stop the server with Ctrl-C.', '');
  return lines.join('\n');
}
