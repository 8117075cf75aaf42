// Which DTLS 1.2 PSK suites libcoap's coap-server-openssl accepts, probed one by one with
// openssl s_client. Documents the reference server the benchmark compares against.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { asciiKeyToPskHex, runBounded, sClient, startCoapServerOpenssl, type CoapServer } from '../helpers/peers.js';

const KEY = '00112233445566778899aabbccddeeff'; // test key only
let server: CoapServer;

beforeAll(async () => {
  server = await startCoapServerOpenssl({ key: KEY, lifetimeSec: 120 });
});
afterAll(async () => {
  await server?.stop();
});

it('accepts PSK-AES128-CCM8 among the plain and ECDHE PSK suites', async () => {
  // RSA-PSK needs a server certificate; coap-server runs PSK only, so leave those out.
  const list = await runBounded('openssl', ['ciphers', '-s', '-tls1_2', '-psk', 'PSK:!RSA'], { timeoutMs: 5000 });
  const ciphers = list.stdout.trim().split(':').filter(Boolean).slice(0, 40); // bounded
  expect(ciphers).toContain('PSK-AES128-CCM8');
  const accepted: string[] = [];
  for (let i = 0; i < ciphers.length; i += 4) {
    const batch = ciphers.slice(i, i + 4);
    const results = await Promise.all(
      batch.map((cipher) =>
        sClient({ port: server.port, identity: 'scan', pskHex: asciiKeyToPskHex(KEY), cipher, timeoutSec: 3 }),
      ),
    );
    results.forEach((r, j) => r.handshakeOk && accepted.push(batch[j]!));
  }
  console.log(`coap-server-openssl accepts: ${accepted.join(' ')}`);
  expect(accepted).toContain('PSK-AES128-CCM8');
  expect(accepted).toContain('ECDHE-PSK-CHACHA20-POLY1305');
}, 60_000);
