// openssl s_client and gnutls-cli runs that resume, counted from their default output (-brief
// hides "New"/"Reused"). The key is on argv: test keys only, as for the helpers of ./peers.ts.
import { GNUTLS_PRIORITY_PSK_CCM8, runBounded } from './peers.js';
import { LOOPBACK } from './ports.js';

/**
 * One s_client run with PSK-AES128-CCM8; `fresh` and `reused` count its "New, TLSv1.2" and
 * "Reused, TLSv1.2" lines (a failed handshake prints "New, (NONE)").
 */
export async function sClientSession(port: number, identity: string, pskHex: string, args: string[]) {
  const res = await runBounded('openssl', [
    's_client', '-dtls1_2', '-connect', `${LOOPBACK}:${port}`, '-psk_identity', identity,
    '-psk', pskHex, // test key only
    '-cipher', 'PSK-AES128-CCM8', ...args,
  ], { timeoutMs: 10_000 });
  return { ...res, reused: (res.stdout.match(/^Reused, TLSv1\.2, /gm) ?? []).length, fresh: (res.stdout.match(/^New, TLSv1\.2, /gm) ?? []).length };
}

/** gnutls-cli --resume: a full handshake, then a resumed one if the server allows it. */
export async function gnutlsResume(port: number, identity: string, pskHex: string, priority = GNUTLS_PRIORITY_PSK_CCM8) {
  const res = await runBounded('gnutls-cli', [
    '--udp', '--port', String(port), '--pskusername', identity,
    '--pskkey', pskHex, // test key only
    '--priority', priority, '--resume', LOOPBACK,
  ], { timeoutMs: 15_000 });
  return { ...res, resumed: /This is a resumed session/.test(res.stdout) };
}
