/**
 * A ClientHello that arrives in several handshake fragments (RFC 6347 4.2.3), put together
 * before the cookie can be checked: clients at a small MTU (pion at 100 bytes, mbedTLS at 130)
 * fragment even their first ClientHello, and the cookie covers fields of the whole message.
 *
 * This is the only state held for a peer before its cookie verifies, so it is held tightly:
 * per source (address and port) only the bytes that arrived (copies of the fragments, never
 * a buffer of the announced length): at most MAX_FRAGMENTS fragments and twice the announced
 * length (at most MAX_HELLO_LENGTH) in all, a fragment already covered being ignored; an entry
 * lives HELLO_TTL_MS at most; at most `maxSources` entries exist, and when all are taken by
 * young entries the new fragment is dropped (the client retransmits), so a flood can cost at
 * most maxSources * 2 * MAX_HELLO_LENGTH bytes (4 MiB with the defaults).
 */
import { HandshakeType } from './constants.js';
import type { HandshakeFragment } from './handshake/header.js';

/** Longest ClientHello reassembled: a hello of a PSK client with a ticket fits with room to spare. */
export const MAX_HELLO_LENGTH = 2048;
/** Fragments kept per hello (at MTU 100, pion's cookie-bearing hello takes about 5). */
export const MAX_FRAGMENTS = 32;
/** A fragmented hello not complete after this long is forgotten. */
export const HELLO_TTL_MS = 2000;

interface Partial {
  readonly messageSeq: number;
  readonly length: number;
  readonly createdAt: number;
  readonly pieces: Array<{ offset: number; body: Buffer }>;
  stored: number;
}

export interface ReassembledHello {
  readonly messageSeq: number;
  readonly body: Buffer;
}

export type HelloFragmentResult = ReassembledHello | 'incomplete' | 'dropped';

export class HelloReassembly {
  private readonly partial = new Map<string, Partial>();

  constructor(
    private readonly maxSources = 1024,
    private readonly now: () => number = Date.now,
  ) {}

  /** Entries held now (for tests and metrics). */
  get size(): number {
    return this.partial.size;
  }

  /**
   * Adds the client_hello fragments of one datagram from `source`. Returns the whole message
   * once every byte is there, 'incomplete' while some are missing, 'dropped' for fragments
   * past the bounds or inconsistent with the ones before (which are then forgotten).
   */
  add(source: string, fragments: readonly HandshakeFragment[]): HelloFragmentResult {
    let result: HelloFragmentResult = 'incomplete';
    for (const f of fragments) {
      result = this.addOne(source, f);
      if (result !== 'incomplete') return result;
    }
    return result;
  }

  /** Forgets entries older than HELLO_TTL_MS; the server calls it from its sweep. */
  sweep(): void {
    const t = this.now();
    for (const [k, p] of this.partial) if (t - p.createdAt > HELLO_TTL_MS) this.partial.delete(k);
  }

  private addOne(source: string, f: HandshakeFragment): HelloFragmentResult {
    if (f.msgType !== HandshakeType.client_hello || f.length > MAX_HELLO_LENGTH || f.fragmentLength === 0) return 'dropped';
    let p = this.partial.get(source);
    if (p && (p.messageSeq !== f.messageSeq || p.length !== f.length || this.now() - p.createdAt > HELLO_TTL_MS)) {
      // A different hello (or a stale one): the newest wins, the old bytes go.
      this.partial.delete(source);
      p = undefined;
    }
    if (!p) {
      if (this.partial.size >= this.maxSources && !this.makeRoom()) return 'dropped';
      p = { messageSeq: f.messageSeq, length: f.length, createdAt: this.now(), pieces: [], stored: 0 };
      this.partial.set(source, p);
    }
    if (p.pieces.length >= MAX_FRAGMENTS || p.stored + f.fragmentLength > 2 * p.length || !this.consistent(p, f)) {
      this.partial.delete(source);
      return 'dropped';
    }
    // A retransmitted fragment we hold already adds nothing.
    if (p.pieces.some((x) => x.offset <= f.fragmentOffset && x.offset + x.body.length >= f.fragmentOffset + f.fragmentLength)) return 'incomplete';
    p.stored += f.fragmentLength;
    p.pieces.push({ offset: f.fragmentOffset, body: Buffer.from(f.body) });
    const body = assemble(p);
    if (!body) return 'incomplete';
    this.partial.delete(source);
    return { messageSeq: p.messageSeq, body };
  }

  /** Overlapping bytes must agree (RFC 6347 4.2.3 allows overlap, not contradiction). */
  private consistent(p: Partial, f: HandshakeFragment): boolean {
    const end = f.fragmentOffset + f.fragmentLength;
    for (const piece of p.pieces) {
      const from = Math.max(piece.offset, f.fragmentOffset);
      const to = Math.min(piece.offset + piece.body.length, end);
      if (from < to && !piece.body.subarray(from - piece.offset, to - piece.offset).equals(f.body.subarray(from - f.fragmentOffset, to - f.fragmentOffset))) {
        return false;
      }
    }
    return true;
  }

  /** Frees the oldest entry if it has expired; false when every entry is still young. */
  private makeRoom(): boolean {
    const oldest = this.partial.entries().next().value as [string, Partial] | undefined;
    if (!oldest || this.now() - oldest[1].createdAt <= HELLO_TTL_MS) return false;
    this.partial.delete(oldest[0]);
    return true;
  }
}

/** The whole message when the pieces cover every byte, else undefined. */
function assemble(p: Partial): Buffer | undefined {
  const sorted = [...p.pieces].sort((a, b) => a.offset - b.offset);
  let covered = 0;
  for (const s of sorted) {
    if (s.offset > covered) return undefined;
    covered = Math.max(covered, s.offset + s.body.length);
  }
  if (covered < p.length) return undefined;
  const body = Buffer.alloc(p.length);
  for (const s of sorted) s.body.copy(body, s.offset);
  return body;
}
