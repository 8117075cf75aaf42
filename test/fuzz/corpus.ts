/**
 * The fuzzing corpus: real datagrams captured from coap-client (OpenSSL and GnuTLS builds),
 * openssl s_client/s_server and gnutls-cli (test/fixtures/flights), cut into the units each
 * parser takes. `npx tsx test/fuzz/build-corpus.ts` writes it to test/fixtures/corpus/; the
 * fuzz tests read the files, and corpus.test.ts checks they still match the flights.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { ContentType, HandshakeType } from '../../src/dtls/constants.js';
import { parseRecords } from '../../src/dtls/record.js';
import { parseHandshakeFragments } from '../../src/dtls/handshake/header.js';
import { parseClientHello } from '../../src/dtls/handshake/client-hello.js';
import { parseServerHello } from '../../src/dtls/handshake/server-hello.js';
import { encodeExtensions } from '../../src/dtls/extensions.js';

export const FLIGHTS_DIR = new URL('../fixtures/flights/', import.meta.url);
export const CORPUS_DIR = new URL('../fixtures/corpus/', import.meta.url);

/** One corpus file per parser input kind; each line is one hex entry. */
export const CORPUS_KINDS = [
  'datagrams',
  'handshake-fragments',
  'client-hello',
  'server-hello',
  'hello-verify-request',
  'server-key-exchange-psk',
  'server-key-exchange-ecdhe-psk',
  'client-key-exchange-psk',
  'client-key-exchange-ecdhe-psk',
  'finished',
  'extensions',
  'supported-groups',
  'ec-point-formats',
  'alerts',
] as const;
export type CorpusKind = (typeof CORPUS_KINDS)[number];
export type Corpus = Record<CorpusKind, Buffer[]>;

function flightDatagrams(): { name: string; datagram: Buffer }[] {
  const out: { name: string; datagram: Buffer }[] = [];
  for (const file of readdirSync(FLIGHTS_DIR).filter((f) => f.endsWith('.hex')).sort()) {
    for (const line of readFileSync(new URL(file, FLIGHTS_DIR), 'utf8').trim().split('\n')) {
      out.push({ name: file, datagram: Buffer.from(line.trim(), 'hex') });
    }
  }
  return out;
}

/** Derives the corpus from the captured flights (plus a few entries no capture holds in clear). */
export function buildCorpus(): Corpus {
  const c = Object.fromEntries(CORPUS_KINDS.map((k) => [k, [] as Buffer[]])) as Corpus;
  const add = (kind: CorpusKind, b: Buffer) => {
    if (!c[kind].some((x) => x.equals(b))) c[kind].push(Buffer.from(b));
  };
  for (const { name, datagram } of flightDatagrams()) {
    add('datagrams', datagram);
    const ecdhe = name.includes('ecdhe') || name.startsWith('gnutls-cli') || name.startsWith('coap-client');
    for (const record of parseRecords(datagram).records) {
      if (record.type !== ContentType.handshake || record.epoch !== 0) continue;
      add('handshake-fragments', record.fragment);
      for (const f of parseHandshakeFragments(record.fragment) ?? []) {
        if (f.fragmentOffset !== 0 || f.fragmentLength !== f.length) continue;
        const body = f.body;
        switch (f.msgType) {
          case HandshakeType.client_hello: {
            add('client-hello', body);
            const ch = parseClientHello(body);
            if (ch && ch.extensions.length > 0) add('extensions', encodeExtensions(ch.extensions).subarray(2));
            for (const e of ch?.extensions ?? []) {
              if (e.type === 10) add('supported-groups', e.data);
              if (e.type === 11) add('ec-point-formats', e.data);
            }
            break;
          }
          case HandshakeType.server_hello: {
            add('server-hello', body);
            const sh = parseServerHello(body);
            if (sh && sh.extensions.length > 0) add('extensions', encodeExtensions(sh.extensions).subarray(2));
            break;
          }
          case HandshakeType.hello_verify_request:
            add('hello-verify-request', body);
            break;
          case HandshakeType.server_key_exchange:
            add(ecdhe ? 'server-key-exchange-ecdhe-psk' : 'server-key-exchange-psk', body);
            break;
          case HandshakeType.client_key_exchange:
            // The key exchange is told by the body: an ECDHE_PSK one carries a point after the identity.
            add(body.length === 2 + body.readUInt16BE(0) ? 'client-key-exchange-psk' : 'client-key-exchange-ecdhe-psk', body);
            break;
        }
      }
    }
  }
  // Finished is only ever sent encrypted, and no capture has a plain-PSK hint: hand-made seeds.
  add('finished', Buffer.from('0123456789abcdef01234567', 'hex'));
  add('server-key-exchange-psk', Buffer.from('0007534e2d68696e74', 'hex')); // hint "SN-hint"
  add('server-key-exchange-psk', Buffer.from('0000', 'hex'));
  for (const a of ['0100', '0228', '0214', '0233', '0273', '0150', '0264']) add('alerts', Buffer.from(a, 'hex'));
  return c;
}

export function corpusFileText(entries: readonly Buffer[]): string {
  return entries.map((b) => b.toString('hex')).join('\n') + '\n';
}

/** Reads the committed corpus (every kind). */
export function loadCorpus(): Corpus {
  const c = {} as Corpus;
  for (const kind of CORPUS_KINDS) {
    const text = readFileSync(new URL(`${kind}.hex`, CORPUS_DIR), 'utf8');
    c[kind] = text.split('\n').filter((l) => l.trim() !== '').map((l) => Buffer.from(l.trim(), 'hex'));
  }
  return c;
}
