import { describe, expect, it } from 'vitest';
import { ContentType, HandshakeType } from '../../../src/dtls/constants.js';
import { encodeFinished, parseFinished } from '../../../src/dtls/handshake/finished.js';
import { encodeHandshake } from '../../../src/dtls/handshake/header.js';
import { parseRecords } from '../../../src/dtls/record.js';
import { expectRejectsTruncationAndTrailing, hex, loadFlight } from './flights.js';

describe('Finished (RFC 5246 7.4.9)', () => {
  // A Finished only ever travels encrypted, so these bytes follow RFC 5246 7.4.9 / RFC 6347 4.2.2
  // by hand: msg_type 20, length 12, message_seq 4, one fragment, then verify_data.
  const verifyData = hex('0102030405060708090a0b0c');
  const wire = hex('14 00000c 0004 000000 00000c 0102030405060708090a0b0c');

  it('round-trips the known bytes', () => {
    expect(encodeHandshake(HandshakeType.finished, 4, encodeFinished({ verifyData }))).toEqual(wire);
    expect(parseFinished(wire.subarray(12))).toEqual({ verifyData });
    expectRejectsTruncationAndTrailing(parseFinished, wire.subarray(12));
    expect(() => encodeFinished({ verifyData: Buffer.alloc(11) })).toThrow(RangeError);
  });

  it('fits the size of every captured encrypted Finished: 24 bytes plus 16 of AEAD overhead', () => {
    // CCM_8: 8-byte explicit nonce + 8-byte tag; ChaCha20-Poly1305: 16-byte tag.
    for (const peer of ['openssl-psk-aes128-ccm8', 'openssl-ecdhe-psk-chacha20-poly1305', 'gnutls-cli']) {
      const records = loadFlight(`${peer}-client-key-exchange`).flatMap((d) => parseRecords(d).records);
      const finished = records.filter((r) => r.epoch === 1);
      expect(finished).toHaveLength(1);
      expect(finished[0]!.type).toBe(ContentType.handshake);
      expect(finished[0]!.fragment).toHaveLength(wire.length + 16);
    }
  });
});
