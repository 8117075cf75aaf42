/** Shared by the codec tests: real captured flights (scripts/capture-flights.ts) and robustness checks. */

import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { type HandshakeFragment, parseHandshakeFragments } from '../../../src/dtls/handshake/header.js';
import { type DTLSRecord, parseRecords } from '../../../src/dtls/record.js';

const DIR = new URL('../../fixtures/flights/', import.meta.url);

/** The datagrams of one fixture file, in the order they arrived. */
export function loadFlight(name: string): Buffer[] {
  return readFileSync(new URL(`${name}.hex`, DIR), 'utf8')
    .trim()
    .split('\n')
    .map((line) => Buffer.from(line, 'hex'));
}

export interface CapturedMessage {
  record: DTLSRecord;
  fragment: HandshakeFragment;
}

/** Every plaintext (epoch 0) handshake fragment of a fixture, with the record it came in. */
export function handshakeMessages(name: string): CapturedMessage[] {
  const out: CapturedMessage[] = [];
  for (const datagram of loadFlight(name)) {
    const { records, malformed } = parseRecords(datagram);
    expect(malformed).toBe(false);
    for (const record of records) {
      if (record.type !== 22 || record.epoch !== 0) continue;
      const fragments = parseHandshakeFragments(record.fragment);
      expect(fragments).toBeDefined();
      for (const fragment of fragments!) out.push({ record, fragment });
    }
  }
  return out;
}

/** The body of the one unfragmented handshake message of type `msgType` in a fixture. */
export function messageBody(name: string, msgType: number): Buffer {
  const found = handshakeMessages(name).filter((m) => m.fragment.msgType === msgType);
  expect(found).toHaveLength(1);
  const { fragment } = found[0]!;
  expect(fragment.fragmentLength).toBe(fragment.length);
  return fragment.body;
}

/**
 * Every strict prefix of `valid` must parse to undefined (except the lengths in `validPrefixes`,
 * where a shorter structure is legitimately complete) and `valid` plus trailing bytes must too.
 * Nothing may throw.
 */
export function expectRejectsTruncationAndTrailing(
  parse: (b: Buffer) => unknown,
  valid: Buffer,
  validPrefixes: readonly number[] = [],
): void {
  expect(parse(valid)).toBeDefined();
  for (let n = 0; n < valid.length; n++) {
    // Copy so that a parser reading past its view would see nothing left to read.
    const prefix = Buffer.from(valid.subarray(0, n));
    const result = parse(prefix);
    if (validPrefixes.includes(n)) expect(result, `prefix ${n}`).toBeDefined();
    else expect(result, `prefix ${n}`).toBeUndefined();
  }
  for (const tail of [[0], [0xff], [0, 0], [0, 0, 0, 0]]) {
    expect(parse(Buffer.concat([valid, Buffer.from(tail)])), `trailing ${tail}`).toBeUndefined();
  }
}

export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
