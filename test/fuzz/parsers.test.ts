/**
 * Every wire parser of src/dtls, fed arbitrary bytes and mutated real flights: it returns a
 * value or undefined and never throws, and whatever it accepts encodes back to the same bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeAlert, parseAlert } from '../../src/dtls/alert.js';
import { CIPHER_SUITES } from '../../src/dtls/ciphers/index.js';
import { DEFAULT_DTLS_CONFIG } from '../../src/dtls/config.js';
import { ContentType, DTLS_1_2, ExtensionType } from '../../src/dtls/constants.js';
import {
  encodeEcPointFormats, encodeExtensions, encodeRenegotiationInfo, encodeSupportedGroups, parseEcPointFormats,
  parseExtensions, parseFlagExtension, parseRenegotiationInfo, parseSupportedGroups,
} from '../../src/dtls/extensions.js';
import { encodeClientHello, parseClientHello } from '../../src/dtls/handshake/client-hello.js';
import {
  encodeClientKeyExchangeEcdhePsk, encodeClientKeyExchangePsk, parseClientKeyExchange,
} from '../../src/dtls/handshake/client-key-exchange.js';
import { encodeFinished, parseFinished } from '../../src/dtls/handshake/finished.js';
import { parseHandshakeFragments, writeHandshakeHeader } from '../../src/dtls/handshake/header.js';
import { encodeHelloVerifyRequest, parseHelloVerifyRequest } from '../../src/dtls/handshake/hello-verify-request.js';
import { encodeServerHelloDone, parseServerHelloDone } from '../../src/dtls/handshake/server-hello-done.js';
import { encodeServerHello, parseServerHello } from '../../src/dtls/handshake/server-hello.js';
import {
  encodeServerKeyExchangeEcdhePsk, encodeServerKeyExchangePsk, parseServerKeyExchangeEcdhePsk, parseServerKeyExchangePsk,
} from '../../src/dtls/handshake/server-key-exchange.js';
import { negotiate } from '../../src/dtls/negotiation.js';
import { encodeRecord, parseRecords } from '../../src/dtls/record.js';
import { type Corpus, loadCorpus } from './corpus.js';
import { inputArb } from './mutate.js';

const corpus: Corpus = loadCorpus();
const RUNS = 4000;
const all = Object.values(corpus).flat();

/** The kind's own seeds first; the others are there for splices and as foreign input. */
function arb(kind: keyof Corpus, maxLength = 512) {
  return fc.oneof({ weight: 4, arbitrary: inputArb(corpus[kind], maxLength) }, { weight: 1, arbitrary: inputArb(all, maxLength) });
}

function check<T>(kind: keyof Corpus, parse: (b: Buffer) => T | undefined, encode: (v: T, input: Buffer) => Buffer): void {
  let accepted = 0;
  fc.assert(
    fc.property(arb(kind), (input) => {
      const copy = Buffer.from(input); // a parser must not write into its input either
      const v = parse(copy);
      expect(copy.equals(input)).toBe(true);
      if (v === undefined) return;
      accepted++;
      expect(encode(v, input).toString('hex')).toBe(input.toString('hex'));
    }),
    { numRuns: RUNS },
  );
  // The seeds themselves are valid, so the property did look at accepted values.
  expect(accepted).toBeGreaterThan(0);
}

/** A hello whose extension block is present but empty (00 00) re-encodes without it: parse
 * gives [] either way. Harmless (the transcript hashes the received bytes), but not bijective. */
function withEmptyExtensionBlock(encoded: Buffer, input: Buffer, extCount: number): Buffer {
  if (extCount === 0 && input.length === encoded.length + 2 && input.subarray(-2).equals(Buffer.from([0, 0]))) {
    return Buffer.concat([encoded, Buffer.from([0, 0])]);
  }
  return encoded;
}

describe('parsers never throw and round-trip what they accept', () => {
  it('records (parseRecords)', () => {
    fc.assert(
      fc.property(arb('datagrams', 1024), (input) => {
        const { records, malformed } = parseRecords(input);
        const re = Buffer.concat(records.map((r) => encodeRecord(r.type, r.version, r.epoch, r.sequenceNumber, r.fragment)));
        // The records kept before a malformed tail are exactly the bytes they came from.
        if (malformed) expect(input.subarray(0, re.length).equals(re)).toBe(true);
        else expect(re.equals(input)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('handshake header and fragments (parseHandshakeFragments)', () => {
    check('handshake-fragments', parseHandshakeFragments, (fragments) =>
      Buffer.concat(fragments.map((f) => {
        const out = Buffer.alloc(12 + f.fragmentLength);
        writeHandshakeHeader(out, 0, f.msgType, f.length, f.messageSeq, f.fragmentOffset, f.fragmentLength);
        f.body.copy(out, 12);
        return out;
      })),
    );
  });

  it('ClientHello', () => {
    check('client-hello', parseClientHello, (ch, input) => withEmptyExtensionBlock(encodeClientHello(ch), input, ch.extensions.length));
  });

  it('ServerHello', () => {
    check('server-hello', parseServerHello, (sh, input) => withEmptyExtensionBlock(encodeServerHello(sh), input, sh.extensions.length));
  });

  it('HelloVerifyRequest', () => {
    check('hello-verify-request', parseHelloVerifyRequest, (h) => encodeHelloVerifyRequest(h));
  });

  it('ServerKeyExchange (PSK)', () => {
    check('server-key-exchange-psk', parseServerKeyExchangePsk, (s) => encodeServerKeyExchangePsk(s.identityHint));
  });

  it('ServerKeyExchange (ECDHE_PSK)', () => {
    check('server-key-exchange-ecdhe-psk', parseServerKeyExchangeEcdhePsk, (s) =>
      encodeServerKeyExchangeEcdhePsk(s.identityHint, s.namedGroup, s.publicKey));
  });

  it('ServerHelloDone', () => {
    fc.assert(fc.property(arb('finished', 16), (input) => {
      const v = parseServerHelloDone(input);
      if (v !== undefined) expect(encodeServerHelloDone().equals(input)).toBe(true);
    }), { numRuns: 500 });
  });

  it('ClientKeyExchange (PSK)', () => {
    check('client-key-exchange-psk', (b) => parseClientKeyExchange(b, 'psk'), (c) => encodeClientKeyExchangePsk(c.identity));
  });

  it('ClientKeyExchange (ECDHE_PSK)', () => {
    check('client-key-exchange-ecdhe-psk', (b) => parseClientKeyExchange(b, 'ecdhe_psk'), (c) =>
      encodeClientKeyExchangeEcdhePsk(c.identity, c.publicKey));
  });

  it('Finished', () => {
    check('finished', parseFinished, (f) => encodeFinished(f));
  });

  it('extension lists', () => {
    check('extensions', parseExtensions, (exts) => {
      // Repeated types never come out of the parser.
      expect(new Set(exts.map((e) => e.type)).size).toBe(exts.length);
      for (const t of [ExtensionType.extended_master_secret, ExtensionType.encrypt_then_mac]) parseFlagExtension(exts, t);
      return encodeExtensions(exts).subarray(2);
    });
  });

  it('supported_groups, ec_point_formats, renegotiation_info', () => {
    check('supported-groups', parseSupportedGroups, (g) => encodeSupportedGroups(g).data);
    check('ec-point-formats', parseEcPointFormats, (f) => encodeEcPointFormats(f).data);
    fc.assert(fc.property(arb('ec-point-formats', 300), (input) => {
      const v = parseRenegotiationInfo(input);
      if (v !== undefined) expect(encodeRenegotiationInfo(v).data.equals(input)).toBe(true);
    }), { numRuns: RUNS });
  });

  it('alerts', () => {
    check('alerts', parseAlert, (a) => encodeAlert(a.level, a.description));
  });

  it('negotiation over any ClientHello that parses never throws', () => {
    fc.assert(fc.property(arb('client-hello'), (input) => {
      const ch = parseClientHello(input);
      if (ch) negotiate(ch, DEFAULT_DTLS_CONFIG);
    }), { numRuns: RUNS });
  });

  it('record protection of every suite rejects garbage ciphertext without throwing', () => {
    for (const suite of CIPHER_SUITES.values()) {
      const keys = { macKey: Buffer.alloc(suite.macKeyLength, 1), encKey: Buffer.alloc(suite.encKeyLength, 2), fixedIv: Buffer.alloc(suite.fixedIvLength, 3) };
      for (const encryptThenMac of [false, true]) {
        const p = suite.createProtection(keys, { encryptThenMac });
        const sealed = p.seal(ContentType.handshake, DTLS_1_2, 1, 0, Buffer.from('0123456789abcdef01234567', 'hex'));
        fc.assert(fc.property(inputArb([sealed], 200), fc.nat({ max: 2 ** 48 - 1 }), (frag, seq) => {
          const plain = p.open(ContentType.handshake, DTLS_1_2, 1, seq === 0 ? 0 : seq, frag);
          if (plain !== undefined) expect(frag.equals(sealed) && seq === 0).toBe(true);
        }), { numRuns: 500 });
      }
    }
  });
});
