/**
 * Handshake message reassembly (RFC 6347 section 4.2.3).
 *
 * Fragments may arrive in any order, overlap, or repeat. Messages are released strictly in
 * message_seq order, because the handshake hash and the state machine both depend on it.
 * Memory is bounded by `maxBytes` across all partially received messages, so a peer cannot
 * make the server buffer more than that by announcing huge lengths.
 */
import type { HandshakeFragment } from './handshake/header.js';

export interface HandshakeMessage {
  readonly msgType: number;
  readonly messageSeq: number;
  readonly body: Buffer;
}

interface Partial {
  msgType: number;
  body: Buffer;
  /** Received byte ranges, sorted and merged: [start, end) pairs. */
  ranges: Array<[number, number]>;
}

export type AddResult = 'accepted' | 'old' | 'invalid' | 'over-limit';

export class HandshakeReassembler {
  private readonly partials = new Map<number, Partial>();
  private bufferedBytes = 0;

  constructor(
    public nextSeq: number,
    private readonly maxBytes = 16_384,
    /** How far ahead of nextSeq a fragment may be (a flight is at most a few messages). */
    private readonly window = 8,
  ) {}

  add(f: HandshakeFragment): AddResult {
    if (f.messageSeq < this.nextSeq) return 'old';
    if (f.messageSeq >= this.nextSeq + this.window) return 'over-limit';
    if (f.fragmentOffset + f.fragmentLength > f.length) return 'invalid';
    let p = this.partials.get(f.messageSeq);
    if (!p) {
      if (this.bufferedBytes + f.length > this.maxBytes) return 'over-limit';
      p = { msgType: f.msgType, body: Buffer.alloc(f.length), ranges: [] };
      this.partials.set(f.messageSeq, p);
      this.bufferedBytes += f.length;
    } else if (p.msgType !== f.msgType || p.body.length !== f.length) {
      return 'invalid';
    }
    f.body.copy(p.body, f.fragmentOffset, 0, f.fragmentLength);
    p.ranges = mergeRange(p.ranges, f.fragmentOffset, f.fragmentOffset + f.fragmentLength);
    return 'accepted';
  }

  /** The next message in order once all its bytes are here. */
  next(): HandshakeMessage | undefined {
    const p = this.partials.get(this.nextSeq);
    if (!p || !isComplete(p)) return undefined;
    this.partials.delete(this.nextSeq);
    this.bufferedBytes -= p.body.length;
    return { msgType: p.msgType, messageSeq: this.nextSeq++, body: p.body };
  }

  clear(): void {
    this.partials.clear();
    this.bufferedBytes = 0;
  }
}

function isComplete(p: Partial): boolean {
  if (p.body.length === 0) return true;
  return p.ranges.length === 1 && p.ranges[0][0] === 0 && p.ranges[0][1] === p.body.length;
}

function mergeRange(ranges: Array<[number, number]>, start: number, end: number): Array<[number, number]> {
  if (end <= start) return ranges;
  const out: Array<[number, number]> = [];
  let s = start;
  let e = end;
  for (const [a, b] of ranges) {
    if (b < s || a > e) out.push([a, b]);
    else {
      s = Math.min(s, a);
      e = Math.max(e, b);
    }
  }
  out.push([s, e]);
  return out.sort((x, y) => x[0] - y[0]);
}
