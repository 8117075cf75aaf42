import { describe, expect, it } from 'vitest';
import { fragmentHandshake, parseHandshakeFragments } from '../../../src/dtls/handshake/header.js';
import { HandshakeReassembler } from '../../../src/dtls/reassembler.js';

function fragments(msgType: number, seq: number, body: Buffer, size: number) {
  return fragmentHandshake(msgType, seq, body, size).map((b) => parseHandshakeFragments(b)![0]);
}

describe('HandshakeReassembler', () => {
  const body = Buffer.from(Array.from({ length: 100 }, (_, i) => i));

  it('puts shuffled, overlapping and repeated fragments back together', () => {
    const r = new HandshakeReassembler(2);
    const parts = fragments(16, 2, body, 30);
    for (const f of [parts[3], parts[1], parts[1], parts[0]]) expect(r.add(f)).toBe('accepted');
    expect(r.next()).toBeUndefined();
    expect(r.add(parts[2])).toBe('accepted');
    expect(r.next()).toEqual({ msgType: 16, messageSeq: 2, body });
    expect(r.nextSeq).toBe(3);
  });

  it('releases messages in message_seq order only', () => {
    const r = new HandshakeReassembler(2);
    r.add(fragments(20, 3, Buffer.alloc(12, 1), 100)[0]);
    expect(r.next()).toBeUndefined();
    r.add(fragments(16, 2, body, 100)[0]);
    expect(r.next()?.messageSeq).toBe(2);
    expect(r.next()?.messageSeq).toBe(3);
  });

  it('reports retransmissions of messages already released', () => {
    const r = new HandshakeReassembler(2);
    const [whole] = fragments(16, 2, body, 100);
    r.add(whole);
    r.next();
    expect(r.add(whole)).toBe('old');
  });

  it('refuses a fragment that contradicts the message it belongs to', () => {
    const r = new HandshakeReassembler(2);
    const parts = fragments(16, 2, body, 30);
    r.add(parts[0]);
    expect(r.add({ ...parts[1], msgType: 20 })).toBe('invalid');
    expect(r.add({ ...parts[1], length: 99 })).toBe('invalid');
  });

  it('holds no more than its byte bound, nor messages far ahead', () => {
    const r = new HandshakeReassembler(0, 150);
    expect(r.add({ msgType: 1, length: 100, messageSeq: 0, fragmentOffset: 0, fragmentLength: 1, body: Buffer.alloc(1) })).toBe('accepted');
    expect(r.add({ msgType: 1, length: 100, messageSeq: 1, fragmentOffset: 0, fragmentLength: 1, body: Buffer.alloc(1) })).toBe('over-limit');
    expect(r.add({ msgType: 1, length: 10, messageSeq: 100, fragmentOffset: 0, fragmentLength: 1, body: Buffer.alloc(1) })).toBe('over-limit');
  });

  it('releases an empty message', () => {
    const r = new HandshakeReassembler(5);
    r.add({ msgType: 14, length: 0, messageSeq: 5, fragmentOffset: 0, fragmentLength: 0, body: Buffer.alloc(0) });
    expect(r.next()).toEqual({ msgType: 14, messageSeq: 5, body: Buffer.alloc(0) });
  });
});
