/**
 * Bounded reading and writing of the TLS presentation language (RFC 5246 section 4).
 *
 * Parsers run a body of reads inside `decode()`. A read that would overrun its bounds throws
 * a private sentinel that `decode()` turns into `undefined`, so codecs stay straight-line
 * code and still never throw to their callers. The sentinel is one shared object without a
 * stack trace: malformed input from the network is cheap to reject.
 */

const MALFORMED: unique symbol = Symbol('malformed');

/** Aborts the surrounding `decode()` with `undefined`. */
export function malformed(): never {
  throw MALFORMED;
}

/** Cursor over one buffer; every read is bounds-checked and returns views, never copies. */
export class WireReader {
  private offset = 0;

  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++];
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.buf.readUIntBE(this.offset, 3);
    this.offset += 3;
    return v;
  }

  u48(): number {
    this.need(6);
    const v = this.buf.readUIntBE(this.offset, 6);
    this.offset += 6;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** All that is left. */
  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** A vector `<min..max>` with a length prefix of `lengthBytes` bytes (1, 2 or 3). */
  vector(lengthBytes: 1 | 2 | 3, min: number, max: number): Buffer {
    const n = lengthBytes === 1 ? this.u8() : lengthBytes === 2 ? this.u16() : this.u24();
    if (n < min || n > max) malformed();
    return this.bytes(n);
  }

  /** A vector of uint16 values, `<min..max>` counted in bytes as the RFCs do. */
  u16List(lengthBytes: 1 | 2, min: number, max: number): number[] {
    const raw = this.vector(lengthBytes, min, max);
    if (raw.length % 2 !== 0) malformed();
    const out: number[] = [];
    for (let i = 0; i < raw.length; i += 2) out.push(raw.readUInt16BE(i));
    return out;
  }

  /** A vector of uint8 values. */
  u8List(min: number, max: number): number[] {
    return [...this.vector(1, min, max)];
  }

  /** Rejects trailing bytes: the structure must fill its buffer exactly. */
  end(): void {
    if (this.offset !== this.buf.length) malformed();
  }

  private need(n: number): void {
    if (n > this.buf.length - this.offset) malformed();
  }
}

/**
 * Runs `body` over `buf` and requires it to consume every byte. Returns `undefined` for any
 * malformed input; programming errors (anything but the sentinel) still propagate.
 */
export function decode<T>(buf: Buffer, body: (r: WireReader) => T): T | undefined {
  try {
    const r = new WireReader(buf);
    const v = body(r);
    r.end();
    return v;
  } catch (e) {
    if (e === MALFORMED) return undefined;
    throw e;
  }
}

// ---- encoding -------------------------------------------------------------------------------
// Encoders take values from our own code, so a value out of its RFC bounds is a bug: they throw
// RangeError rather than put a vector on the wire that a peer would reject.

export function u8(v: number): Buffer {
  const b = Buffer.allocUnsafe(1);
  b.writeUInt8(v);
  return b;
}

export function u16(v: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(v);
  return b;
}

export function u24(v: number): Buffer {
  const b = Buffer.allocUnsafe(3);
  b.writeUIntBE(v, 0, 3);
  return b;
}

/** Length-prefixed vector `<min..max>`. */
export function vector(lengthBytes: 1 | 2 | 3, data: Buffer, min: number, max: number, what: string): Buffer {
  if (data.length < min || data.length > max) {
    throw new RangeError(`${what}: length ${data.length} outside <${min}..${max}>`);
  }
  const prefix = lengthBytes === 1 ? u8(data.length) : lengthBytes === 2 ? u16(data.length) : u24(data.length);
  return Buffer.concat([prefix, data]);
}

export function u16ListVector(lengthBytes: 1 | 2, values: readonly number[], min: number, max: number, what: string): Buffer {
  const raw = Buffer.allocUnsafe(values.length * 2);
  values.forEach((v, i) => raw.writeUInt16BE(v, i * 2));
  return vector(lengthBytes, raw, min, max, what);
}

export function fixed(data: Buffer, length: number, what: string): Buffer {
  if (data.length !== length) throw new RangeError(`${what}: length ${data.length}, must be ${length}`);
  return data;
}
