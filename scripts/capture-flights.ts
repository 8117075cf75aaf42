/**
 * Captures real DTLS 1.2 PSK client flights as known-answer fixtures for the codec tests.
 *
 * For each installed peer it binds a UDP socket on 127.0.0.1 (random port), runs the client
 * against it and plays just enough of a server, with this project's own encoders, to make the
 * client send each plaintext flight:
 *   1. its first ClientHello               -> <peer>-client-hello.hex
 *   2. after our HelloVerifyRequest, the ClientHello with the cookie -> <peer>-client-hello-cookie.hex
 *   3. after our ServerHello [ServerKeyExchange] ServerHelloDone, its
 *      ClientKeyExchange, ChangeCipherSpec, Finished (epoch 1) -> <peer>-client-key-exchange.hex
 * We never finish the handshake: the client is killed when the flight is in or its time is up.
 * Then the other way round, against `openssl s_server` as the real server: we replay the
 * s_client ClientHello captured above, answer the HelloVerifyRequest with its cookie, and keep
 *   openssl-s_server-<cipher>-hello-verify-request.hex and openssl-s_server-<cipher>-server-hello.hex
 *   (ServerHello, ServerKeyExchange, ServerHelloDone).
 * Each .hex file holds one received datagram per line.
 *
 * Usage: npx tsx scripts/capture-flights.ts [outDir]   (default test/fixtures/flights)
 */

import { spawn } from 'node:child_process';
import { createECDH, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ContentType, DTLS_1_0, DTLS_1_2, ExtensionType, HandshakeType, NamedGroup } from '../src/dtls/constants.js';
import { EMPTY_RENEGOTIATION_INFO_SCSV } from '../src/dtls/constants.js';
import { type Extension, encodeRenegotiationInfo, findExtension } from '../src/dtls/extensions.js';
import { type ClientHello, encodeClientHello, parseClientHello } from '../src/dtls/handshake/client-hello.js';
import { encodeHandshake, parseHandshakeFragments } from '../src/dtls/handshake/header.js';
import { encodeHelloVerifyRequest, parseHelloVerifyRequest } from '../src/dtls/handshake/hello-verify-request.js';
import { encodeServerHelloDone } from '../src/dtls/handshake/server-hello-done.js';
import { encodeServerHello } from '../src/dtls/handshake/server-hello.js';
import {
  encodeServerKeyExchangeEcdhePsk,
  encodeServerKeyExchangePsk,
} from '../src/dtls/handshake/server-key-exchange.js';
import { encodeRecord, parseRecords } from '../src/dtls/record.js';

const PEER_TIMEOUT_MS = 6000;

/** Suites we may pick, in order of preference, with their key exchange. */
const SUITES: ReadonlyArray<[number, 'psk' | 'ecdhe_psk']> = [
  [0xccac, 'ecdhe_psk'], // TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256
  [0xc0a8, 'psk'], // TLS_PSK_WITH_AES_128_CCM_8
  [0xc0a4, 'psk'], // TLS_PSK_WITH_AES_128_CCM
  [0x00a8, 'psk'], // TLS_PSK_WITH_AES_128_GCM_SHA256
  [0xc037, 'ecdhe_psk'], // TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256
  [0x00ae, 'psk'], // TLS_PSK_WITH_AES_128_CBC_SHA256
];

interface Peer {
  name: string;
  command: (port: number) => [string, string[]];
}

const PEERS: Peer[] = [
  {
    name: 'coap-client-openssl',
    command: (port) => ['coap-client-openssl', ['-u', 'SN1', '-k', 'secret', `coaps://127.0.0.1:${port}/whoami`]],
  },
  {
    name: 'coap-client-gnutls',
    command: (port) => ['coap-client-gnutls', ['-u', 'SN1', '-k', 'secret', `coaps://127.0.0.1:${port}/whoami`]],
  },
  ...(['PSK-AES128-CCM8', 'ECDHE-PSK-CHACHA20-POLY1305'] as const).map(
    (cipher): Peer => ({
      name: `openssl-${cipher.toLowerCase()}`,
      command: (port) => [
        'openssl',
        ['s_client', '-dtls1_2', '-psk_identity', 'SN1', '-psk', '00112233', '-cipher', cipher,
          '-connect', `127.0.0.1:${port}`],
      ],
    }),
  ),
  {
    name: 'gnutls-cli',
    command: (port) => [
      'gnutls-cli',
      ['--udp', '-p', String(port), '--pskusername', 'SN1', '--pskkey', '00112233',
        '--priority', 'NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-PSK:+PSK', '127.0.0.1'],
    ],
  },
];

/** The first ClientHello in a datagram, if it holds one whole. */
function clientHelloIn(datagram: Buffer): ClientHello | undefined {
  for (const rec of parseRecords(datagram).records) {
    if (rec.type !== ContentType.handshake || rec.epoch !== 0) continue;
    for (const f of parseHandshakeFragments(rec.fragment) ?? []) {
      if (f.msgType === HandshakeType.client_hello && f.fragmentLength === f.length) return parseClientHello(f.body);
    }
  }
  return undefined;
}

function hasEpoch1Record(datagram: Buffer): boolean {
  return parseRecords(datagram).records.some((r) => r.epoch === 1);
}

function serverFlight(ch: ClientHello, nextRecordSeq: number): Buffer {
  const choice = SUITES.find(([id]) => ch.cipherSuites.includes(id));
  if (!choice) throw new Error(`no suite in common; offered ${ch.cipherSuites.map((s) => s.toString(16)).join(',')}`);
  const [suite, kx] = choice;
  const extensions: Extension[] = [];
  // RFC 5746 3.6: answer the SCSV or an empty renegotiation_info with an empty renegotiation_info.
  if (findExtension(ch.extensions, ExtensionType.renegotiation_info) || ch.cipherSuites.includes(EMPTY_RENEGOTIATION_INFO_SCSV)) {
    extensions.push(encodeRenegotiationInfo());
  }
  const messages: Array<[number, Buffer]> = [
    [
      HandshakeType.server_hello,
      encodeServerHello({
        serverVersion: DTLS_1_2, random: randomBytes(32), sessionId: Buffer.alloc(0),
        cipherSuite: suite, compressionMethod: 0, extensions,
      }),
    ],
  ];
  const hint = Buffer.from('capture');
  if (kx === 'ecdhe_psk') {
    const ecdh = createECDH('prime256v1');
    messages.push([HandshakeType.server_key_exchange, encodeServerKeyExchangeEcdhePsk(hint, NamedGroup.secp256r1, ecdh.generateKeys())]);
  } else {
    messages.push([HandshakeType.server_key_exchange, encodeServerKeyExchangePsk(hint)]);
  }
  messages.push([HandshakeType.server_hello_done, encodeServerHelloDone()]);
  // message_seq 0 was the HelloVerifyRequest (RFC 6347 4.2.2).
  return Buffer.concat(
    messages.map(([type, body], i) =>
      encodeRecord(ContentType.handshake, DTLS_1_2, 0, nextRecordSeq + i, encodeHandshake(type, i + 1, body)),
    ),
  );
}

async function capture(peer: Peer, outDir: string): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  const [cmd, args] = peer.command(port);
  const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'ignore'] });
  child.on('error', (e) => console.error(`${peer.name}: ${e.message}`));

  const saved: Record<string, Buffer[]> = {};
  type Stage = 'hello' | 'cookie' | 'kx' | 'done';
  let stage = 'hello' as Stage; // widened: the message handler moves it on
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, PEER_TIMEOUT_MS);
    const finish = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== '127.0.0.1') return;
      const reply = (b: Buffer) => socket.send(b, rinfo.port, rinfo.address);
      const ch = clientHelloIn(msg);
      if (stage === 'hello' && ch && ch.cookie.length === 0) {
        saved['client-hello'] = [msg];
        const hvr = encodeHelloVerifyRequest({ cookie: randomBytes(20) });
        reply(encodeRecord(ContentType.handshake, DTLS_1_0, 0, 0, encodeHandshake(HandshakeType.hello_verify_request, 0, hvr)));
        stage = 'cookie';
      } else if (stage === 'cookie' && ch && ch.cookie.length > 0) {
        saved['client-hello-cookie'] = [msg];
        reply(serverFlight(ch, 1));
        stage = 'kx';
      } else if (stage === 'kx' && !ch) {
        (saved['client-key-exchange'] ??= []).push(msg);
        if (hasEpoch1Record(msg)) {
          stage = 'done';
          finish();
        }
      }
    });
  });
  child.kill('SIGKILL');
  socket.close();

  for (const [what, datagrams] of Object.entries(saved)) saveHex(join(outDir, `${peer.name}-${what}.hex`), datagrams);
  if (stage !== 'done') console.error(`${peer.name}: stopped at stage ${stage}`);
}

function cookieIn(datagram: Buffer): Buffer | undefined {
  for (const rec of parseRecords(datagram).records) {
    for (const f of rec.type === ContentType.handshake ? parseHandshakeFragments(rec.fragment) ?? [] : []) {
      if (f.msgType === HandshakeType.hello_verify_request) return parseHelloVerifyRequest(f.body)?.cookie;
    }
  }
  return undefined;
}

function saveHex(file: string, datagrams: Buffer[]): void {
  writeFileSync(file, datagrams.map((d) => d.toString('hex')).join('\n') + '\n');
  console.log(`${file}: ${datagrams.length} datagram(s)`);
}

/** Runs `openssl s_server` and plays its client with a ClientHello captured from s_client. */
async function captureServer(cipher: string, outDir: string): Promise<void> {
  const clientHelloHex = readFileSync(join(outDir, `openssl-${cipher.toLowerCase()}-client-hello.hex`), 'utf8');
  const ch = clientHelloIn(Buffer.from(clientHelloHex.trim(), 'hex'));
  if (!ch) throw new Error(`no ClientHello fixture for ${cipher}`);
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  // Borrow a free port for the server: bind, read, close (a tiny race, fine on loopback).
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const serverPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const child = spawn(
    'openssl',
    ['s_server', '-dtls1_2', '-nocert', '-psk', '00112233', '-psk_hint', 'SN-hint', '-cipher', cipher,
      '-accept', `127.0.0.1:${serverPort}`],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  const name = `openssl-s_server-${cipher.toLowerCase()}`;
  const send = (hello: ClientHello, seq: number) =>
    socket.send(
      encodeRecord(ContentType.handshake, DTLS_1_2, 0, seq, encodeHandshake(HandshakeType.client_hello, seq, encodeClientHello(hello))),
      serverPort, '127.0.0.1',
    );
  let stage = 'hvr' as 'hvr' | 'hello' | 'done'; // widened: the message handler moves it on
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, PEER_TIMEOUT_MS);
    // s_server prints ACCEPT once it listens; until then our datagrams would be lost.
    child.stdout!.on('data', (d: Buffer) => {
      if (stage === 'hvr' && d.toString().includes('ACCEPT')) send(ch, 0);
    });
    socket.on('message', (msg) => {
      const cookie = cookieIn(msg);
      if (stage === 'hvr' && cookie) {
        saveHex(join(outDir, `${name}-hello-verify-request.hex`), [msg]);
        stage = 'hello';
        send({ ...ch, cookie }, 1);
      } else if (stage === 'hello' && !cookie) {
        saveHex(join(outDir, `${name}-server-hello.hex`), [msg]);
        stage = 'done';
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.kill('SIGKILL');
  socket.close();
  if (stage !== 'done') console.error(`${name}: stopped at stage ${stage}`);
}

const outDir = process.argv[2] ?? 'test/fixtures/flights';
mkdirSync(outDir, { recursive: true });
for (const peer of PEERS) await capture(peer, outDir);
for (const cipher of ['PSK-AES128-CCM8', 'ECDHE-PSK-CHACHA20-POLY1305']) await captureServer(cipher, outDir);
