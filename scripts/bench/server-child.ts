/**
 * Servers the bench runs in a child process of their own (pinned to the server core), besides
 * the real `coap-psk serve`:
 *
 *   null    The generator's ceiling. This project's DTLS endpoint alone (src/dtls/server.ts),
 *           with a resolver that returns one constant key at once and a CoAP "responder" that
 *           turns each CON into its ACK 2.05 in place: no HSM, no node-coap, no router.
 *   latency The real server (src/server.ts createServer) on the real PKCS#11 resolver from the
 *           COAP_PSK_* environment (cache as COAP_PSK_CACHE_MAX says), with BENCH_HSM_DELAY_MS
 *           of latency added in front of every key lookup: the isolation test.
 *
 * Usage: tsx scripts/bench/server-child.ts <null|latency> <port>. Prints `READY <port>` when
 * bound; exits on SIGTERM/SIGINT.
 */
import { DtlsServer } from '../../src/dtls/server.js';
import { createServer } from '../../src/server.js';
import { createResolver, loadKeyConfig } from '../../src/config/keys.js';
import type { KeyResolver } from '../../src/keys/types.js';

const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg ?? 0);
const HOST = '127.0.0.1';
const CONSTANT_PSK = Buffer.from('bench-null-responder-key');

let stop: () => Promise<void>;

if (mode === 'null') {
  const resolver: KeyResolver = {
    resolve: async () => [{ psk: Buffer.from(CONSTANT_PSK), keyLabel: 'null' }],
    close: async () => {},
  };
  const dtls = new DtlsServer({ resolver });
  dtls.on('data', (address: string, p: number, data: Buffer) => {
    if (data.length < 4) return;
    const tkl = data[0]! & 0x0f;
    const reply = Buffer.from(data.subarray(0, 4 + tkl));
    reply[0] = 0x60 | tkl; // version 1, ACK
    reply[1] = 0x45; // 2.05 Content
    dtls.send(address, p, reply);
  });
  const bound = await dtls.listen(port, HOST);
  stop = () => dtls.close();
  process.stdout.write(`READY ${bound.port}\n`);
} else if (mode === 'latency') {
  const delayMs = Number(process.env.BENCH_HSM_DELAY_MS ?? 50);
  const inner = await createResolver(loadKeyConfig(process.env));
  const keys: KeyResolver = {
    resolve: (identity) => new Promise((r) => setTimeout(r, delayMs)).then(() => inner.resolve(identity)),
    close: () => inner.close(),
  };
  const server = await createServer({ keys });
  const bound = await server.listen(port, HOST);
  stop = () => server.close();
  process.stdout.write(`READY ${bound.port}\n`);
} else {
  process.stderr.write('usage: server-child.ts <null|latency> <port>\n');
  process.exit(2);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    void stop().finally(() => process.exit(0));
  });
}
