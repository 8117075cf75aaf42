/**
 * In-process cost of one CoAP request over DTLS (CONTRIBUTING: "drive DtlsServer.onDatagram()
 * in-process with records from DtlsClientSession"): one real handshake over loopback, then N
 * encrypted CON GET records made up front are fed to the server's onDatagram() in a loop, and
 * the process CPU time of that loop is divided by N. The same loop with the CoAP layer
 * replaced by a null responder (each record answered by one fixed 10-byte reply, encrypted and
 * sent) gives the DTLS side with its socket; the difference is the CoAP layer's share (message
 * layer, router, metrics). Replies leave through the real socket, as they would in production.
 *
 *   npx tsx scripts/coap-cost.ts [N] [path]      (default 20000 /whoami)
 */
import { deriveSoftware } from '../src/keys/derive.js';
import { SoftwareResolver } from '../src/keys/software.js';
import { createServer } from '../src/server.js';
import { connectDtls } from '../src/dtls/client.js';
import { coapGet } from '../test/helpers/coap-bytes.js';

const N = Number(process.argv[2] ?? 20000);
const path = (process.argv[3] ?? '/whoami').split('/').filter(Boolean);
const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only

const server = await createServer({
  keys: new SoftwareResolver({ keys: [{ label: 'bench', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} }),
  routes: (r) => {
    r.get('/hello', (_req, res) => res.end('hello'));
  },
});
const { port } = await server.listen(0, '127.0.0.1');
const serial = 'SN-cost';
const client = await connectDtls({ host: '127.0.0.1', port, identity: serial, psk: deriveSoftware(MASTER, Buffer.from(serial)) });
const local = client.socket.address();
let mid = 1;

function records(n: number): Buffer[] {
  const out: Buffer[] = [];
  const original = (client.socket.send as unknown as (...a: unknown[]) => void).bind(client.socket);
  (client.socket as unknown as { send: (d: Buffer) => void }).send = (d: Buffer) => out.push(Buffer.from(d));
  for (let i = 0; i < n; i++) client.send(coapGet((mid = (mid + 1) & 0xffff), path, i & 0xff));
  (client.socket as unknown as { send: unknown }).send = original;
  return out;
}

/** The loop, then the ticks it queued (dgram sends to an IP run on the next tick): all of it is server CPU. */
async function run(label: string, recs: Buffer[]): Promise<number> {
  const t0 = process.cpuUsage();
  for (const r of recs) server.dtls.onDatagram(r, local.address, local.port);
  await new Promise((r) => setImmediate(r));
  const t = process.cpuUsage(t0);
  const us = (t.user + t.system) / recs.length;
  console.log(`${label}: ${us.toFixed(1)} µs CPU per request (${recs.length} requests)`);
  return us;
}

const ROUNDS = 5;
// Every record is made up front; then the client's socket closes, so that nothing of the client
// (receiving the replies) runs inside a measurement. The replies still cost the server its sends.
const batches = Array.from({ length: 3 + 2 * ROUNDS }, () => records(N));
await new Promise<void>((r) => client.socket.close(() => r()));
const pause = () => new Promise((r) => setTimeout(r, 200));
// Warm-up: V8 compiles the path; the reply cache fills to its working size.
for (let i = 0; i < 3; i++) {
  await run('warm-up', batches.shift()!);
  await pause();
}
const full: number[] = [];
const dtlsOnly: number[] = [];
const listeners = server.dtls.listeners('session-data') as Array<(...a: unknown[]) => void>;
const NULL_REPLY = Buffer.from('6045000142ff53', 'hex');
const nullResponder = (s: { send(d: Buffer): boolean }) => s.send(NULL_REPLY);
for (let round = 0; round < ROUNDS; round++) {
  full.push(await run('DTLS + CoAP + router', batches.shift()!));
  await pause();
  for (const l of listeners) server.dtls.off('session-data', l);
  server.dtls.on('session-data', nullResponder);
  dtlsOnly.push(await run('DTLS + null responder', batches.shift()!));
  server.dtls.off('session-data', nullResponder);
  for (const l of listeners) server.dtls.on('session-data', l);
  await pause();
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(`median of ${ROUNDS}: whole ${med(full).toFixed(1)} µs, DTLS + null responder ${med(dtlsOnly).toFixed(1)} µs, CoAP layer ${(med(full) - med(dtlsOnly)).toFixed(1)} µs`);
await server.close();
