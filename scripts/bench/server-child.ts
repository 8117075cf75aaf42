/**
 * Servers the bench runs in a child process of their own (pinned to the server core), besides
 * the real `coap-psk serve`:
 *
 *   null    The generator's ceiling. This project's DTLS endpoint alone (src/dtls/server.ts),
 *           with a resolver that returns one constant key at once and a CoAP "responder" that
 *           turns each CON into its ACK 2.05 in place: no HSM, no node-coap, no router.
 *   udp-null  The floor of the datagram path: a plain node:dgram socket that turns each CON into
 *           its ACK 2.05 in place, as `null` does, with no DTLS at all (coap://).
 *   node-coap The floor of the CoAP library: node-coap's Server as it ships (no DTLS, none of
 *           this project's fixes to it), answering every request with a short text/plain body.
 *
 * The isolation test's server is scripts/bench/isolation-server.mjs.
 *
 * Usage: tsx scripts/bench/server-child.ts <null|udp-null|node-coap> <port>. Prints `READY <port>` when
 * bound; exits on SIGTERM/SIGINT.
 */
import dgram from 'node:dgram';
import coap from 'coap';
import { DEFAULT_DTLS_CONFIG } from '../../src/dtls/config.js';
import type { DtlsSession } from '../../src/dtls/session.js';
import { DtlsServer } from '../../src/dtls/server.js';

const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg ?? 0);
const HOST = '127.0.0.1';
const CONSTANT_PSK = Buffer.from('bench-null-responder-key');

let stop: () => Promise<void>;

/** The null responder's answer: the request's header and token, as ACK 2.05 Content. */
function ackInPlace(request: Buffer): Buffer | undefined {
  if (request.length < 4) return undefined;
  const tkl = request[0]! & 0x0f;
  const reply = Buffer.from(request.subarray(0, 4 + tkl));
  reply[0] = 0x60 | tkl; // version 1, ACK
  reply[1] = 0x45; // 2.05 Content
  return reply;
}

/** A plain UDP socket on HOST:port, with the real server's socket buffer sizes. */
async function bindPlainSocket(): Promise<dgram.Socket> {
  const { recvBufferSize, sendBufferSize } = DEFAULT_DTLS_CONFIG;
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize, sendBufferSize });
  await new Promise<void>((resolve) => socket.bind(port, HOST, resolve));
  return socket;
}

if (mode === 'null') {
  const dtls = new DtlsServer({ pskLookup: async () => [{ psk: Buffer.from(CONSTANT_PSK), tag: 'null' }] });
  dtls.on('session-data', (session: DtlsSession, data: Buffer) => {
    const reply = ackInPlace(data);
    if (reply) session.send(reply);
  });
  const bound = await dtls.listen(port, HOST);
  stop = () => dtls.close();
  process.stdout.write(`READY ${bound.port}\n`);
} else if (mode === 'udp-null') {
  const socket = await bindPlainSocket();
  socket.on('message', (msg, rinfo) => {
    const reply = ackInPlace(msg);
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  stop = () => new Promise<void>((resolve) => socket.close(() => resolve()));
  process.stdout.write(`READY ${socket.address().port}\n`);
} else if (mode === 'node-coap') {
  const socket = await bindPlainSocket();
  const server = coap.createServer();
  server.on('request', (req, res) => {
    res.setOption('Content-Format', 'text/plain');
    res.end(`${req.rsinfo.address}`);
  });
  await new Promise<void>((resolve) => server.listen(socket, () => resolve()));
  stop = () => new Promise<void>((resolve) => server.close(() => socket.close(() => resolve())));
  process.stdout.write(`READY ${port}\n`);
} else {
  process.stderr.write('usage: server-child.ts <null|udp-null|node-coap> <port>\n');
  process.exit(2);
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    void stop().finally(() => process.exit(0));
  });
}
