/**
 * The CoAP state a graceful restart carries per session (src/coap/handover.ts), byte by byte:
 * the blob of a session with one CON relation, built by hand from the format in the file's
 * comment, and the blobs it refuses. The whole path (real processes, 200 observers) is in
 * test/cluster/takeover.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { decodeSessionState, encodeSessionState } from '../../src/coap/handover.js';
import { ObserveRelation } from '../../src/coap/observe.js';
import { SessionState } from '../../src/coap/session-state.js';
import { DEFAULT_RETRANSMIT } from '../../src/coap/messaging.js';

// CON GET, MID 0x0102, token a1 b2, Observe: 0, Uri-Path "t" (RFC 7252 3).
const REGISTRATION = Buffer.from([0x42, 0x01, 0x01, 0x02, 0xa1, 0xb2, 0x60, 0x51, 0x74]);
const LAST_CON_AT = 1_700_000_000_123;
const BLOB = Buffer.concat([
  Buffer.from([1, 0x16, 0x34, 1]), // version 1; last Message ID 0x1234 + 2^10; one relation
  Buffer.from([1, 0x01, 0x00, 0x10]), // confirmable; Observe 0x10 + 2^16
  Buffer.from('018bcfe5687b', 'hex'), // last CON at (uint48 ms)
  Buffer.from([0, REGISTRATION.length]),
  REGISTRATION,
]);

describe('CoAP hand-over state', () => {
  it('a session with one CON relation: its numbers past the old process\'s gaps, the registration as sent', () => {
    expect(LAST_CON_AT.toString(16)).toBe('18bcfe5687b');
    const state = new SessionState({ address: '127.0.0.1', port: 1, isOpen: true, send: () => true }, {
      identity: 'SN1', identityBytes: Buffer.from('SN1'), keyLabel: 'k1', cipherSuite: 'TLS_PSK_WITH_AES_128_CCM_8', serial: 'SN1', identityParts: { serial: 'SN1' },
    });
    state.continueMessageIds(0x1234);
    const relation = new ObserveRelation(state, 'a1b2', REGISTRATION.subarray(4, 6), true, { relationEnded: () => {} }, DEFAULT_RETRANSMIT, LAST_CON_AT, REGISTRATION);
    relation.continueFrom(0x10, LAST_CON_AT);
    state.relations.set('a1b2', relation);
    expect(encodeSessionState(state)).toEqual(BLOB);
    expect(decodeSessionState(BLOB)).toEqual({ lastMessageId: 0x1634, relations: [{ confirmable: true, observe: 0x10010, lastConAt: LAST_CON_AT, registration: REGISTRATION }] });
  });

  it('refuses another version, a truncated blob, trailing bytes and unknown flags', () => {
    expect(decodeSessionState(Buffer.from([1, 0, 0, 0]))).toEqual({ lastMessageId: 0, relations: [] });
    expect(decodeSessionState(Buffer.concat([Buffer.from([2]), BLOB.subarray(1)]))).toBeUndefined();
    expect(decodeSessionState(BLOB.subarray(0, BLOB.length - 1))).toBeUndefined();
    expect(decodeSessionState(Buffer.concat([BLOB, Buffer.from([0])]))).toBeUndefined();
    expect(decodeSessionState(Buffer.concat([BLOB.subarray(0, 4), Buffer.from([3]), BLOB.subarray(5)]))).toBeUndefined();
  });
});
