/**
 * `coap-psk derive [SERIAL ...]`: the factory side. Prints, for each serial, the 16 bytes the
 * token derives under the newest master key, in hex: `SERIAL<space>hex`, the line format of
 * the reference Go program (which printed to stderr; we print to stdout). That line is ambiguous
 * for a serial holding a space, so scripts get `--key-only` (one serial, the hex alone) or the
 * quoted formats (csv, jsonl). Serials follow the rules of src/keys/serial.ts, the same as the
 * server's: refused ones are reported and skipped, doubtful ones warned about, and a summary
 * line closes a run that skipped, warned or wrote a file. Streams stdin in constant memory:
 * batches of serials, and no new batch until the output has drained.
 */
import { randomBytes } from 'node:crypto';
import { type WriteStream, createWriteStream, fstatSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { UserError } from '../errors.js';
import { type KeyConfig, loadKeyConfig, openKeySource } from '../config/keys.js';
import { MAX_IDENTITY_BYTES, decodeSerial, serialProblem, serialWarnings } from '../keys/serial.js';
import { Pkcs11Resolver } from '../keys/pkcs11.js';

export type DeriveFormat = 'plain' | 'csv' | 'jsonl';

export interface DeriveOptions {
  serials: string[];
  format?: string;
  out?: string;
  strict?: boolean;
  /** Print the key alone (one serial argument): for `KEY=$(coap-psk derive --key-only SN)`. */
  keyOnly?: boolean;
  /** Injected by tests; default process.stdin / process.stdout / process.stderr. */
  stdin?: Readable & { isTTY?: boolean };
  stdout?: Writable;
  stderr?: Writable & { isTTY?: boolean };
  env?: Record<string, string | undefined>;
  keyConfig?: KeyConfig;
}

export interface DeriveSummary {
  derived: number;
  skipped: number;
  warnings: number;
  seconds: number;
}

/** Raw 16-byte keys for a batch of serials, under the newest master key. */
type BatchDerive = (serials: Buffer[]) => Buffer[];

const BATCH = 512;

interface SerialLine {
  bytes: Buffer;
  /** "line 7" or "argument 3": where to point the operator. */
  where: string;
}

/** Splits a byte stream into lines without decoding: the key is derived over the exact bytes. */
async function* linesOf(input: Readable, onBytes: (n: number) => void): AsyncGenerator<SerialLine> {
  let rest: Buffer = Buffer.alloc(0);
  let lineNo = 0;
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    onBytes(buf.length);
    let data = rest.length ? Buffer.concat([rest, buf]) : buf;
    let start = 0;
    for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
      yield line(data.subarray(start, nl), ++lineNo);
      start = nl + 1;
    }
    rest = Buffer.from(data.subarray(start));
    // A line this long is not a serial; keep only enough of it to report it, not all of it.
    if (rest.length > 64 * 1024) rest = Buffer.concat([rest.subarray(0, MAX_IDENTITY_BYTES + 1), Buffer.from('…')]);
    data = Buffer.alloc(0);
  }
  if (rest.length > 0) yield line(rest, ++lineNo);
}

function line(bytes: Buffer, lineNo: number): SerialLine {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  return { bytes: Buffer.from(bytes.subarray(0, end)), where: `line ${lineNo}` };
}

function* argsOf(serials: string[]): Generator<SerialLine> {
  for (let i = 0; i < serials.length; i++) yield { bytes: Buffer.from(serials[i]!, 'utf8'), where: `argument ${i + 1}` };
}

/** RFC 4180: quote a field holding a comma, a quote or a line break; double the quotes. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function formatter(format: DeriveFormat, keyOnly: boolean): { header: string; row: (serial: string, hex: string) => string } {
  switch (format) {
    case 'plain':
      if (keyOnly) return { header: '', row: (_s, h) => `${h}\n` };
      return { header: '', row: (s, h) => `${s} ${h}\n` };
    case 'csv':
      return { header: 'serial,psk\r\n', row: (s, h) => `${csvField(s)},${h}\r\n` };
    case 'jsonl':
      return { header: '', row: (s, h) => `${JSON.stringify({ serial: s, psk: h })}\n` };
  }
}

function parseFormat(value: string | undefined): DeriveFormat {
  const f = value ?? 'plain';
  if (f === 'plain' || f === 'csv' || f === 'jsonl') return f;
  throw new UserError(`--format must be plain, csv or jsonl (got "${f}")`);
}

function write(out: Writable, text: string): Promise<void> | undefined {
  if (out.write(text)) return undefined;
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      out.off('drain', done);
      out.off('error', done);
      if (err) reject(err);
      else resolve();
    };
    out.once('drain', done);
    out.once('error', done);
  });
}

/** A file written under a temporary name next to the target and renamed into place at the end. */
class AtomicFile {
  private constructor(readonly target: string, readonly temp: string, readonly stream: WriteStream) {}

  static async create(target: string): Promise<AtomicFile> {
    if (isDirectory(target)) throw new UserError(`--out ${target} is a directory; give a file name, e.g. --out ${join(target, 'keys.csv')}`);
    const temp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    // 0600: the file holds device keys. 'wx': never follow or reuse someone else's file.
    const stream = createWriteStream(temp, { flags: 'wx', mode: 0o600 });
    try {
      await once(stream, 'open');
    } catch (e) {
      throw new UserError(`--out cannot be written: ${target} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return new AtomicFile(target, temp, stream);
  }

  async commit(): Promise<void> {
    const closed = once(this.stream, 'close');
    this.stream.end();
    await closed;
    // Data on disk before the name points at it: a crash leaves the old file or the new one.
    const handle = await open(this.temp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(this.temp, this.target);
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await unlink(this.temp).catch(() => {});
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

class Progress {
  private last = 0;
  private readonly started = Date.now();
  constructor(private readonly err: Writable, private readonly totalBytes: number | undefined) {}

  update(derived: number, bytesRead: number, final = false): void {
    const now = Date.now();
    if (!final && now - this.last < 200) return;
    this.last = now;
    const rate = Math.round(derived / Math.max(0.001, (now - this.started) / 1000));
    let bar = '';
    if (this.totalBytes) {
      const frac = Math.min(1, bytesRead / this.totalBytes);
      const filled = Math.round(frac * 30);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${Math.floor(frac * 100)}% `;
    }
    this.err.write(`\r${bar}${derived} derived, ${rate}/s${final ? '\n' : ''}`);
  }
}

async function batchDeriver(config: KeyConfig): Promise<{ derive: BatchDerive; close: () => Promise<void> }> {
  const source = await openKeySource(config);
  if (source instanceof Pkcs11Resolver) {
    return { derive: (serials) => source.deriveSync(serials), close: () => source.close() };
  }
  return { derive: (serials) => serials.map((s) => source.deriveRaw(s)), close: () => source.close() };
}

function checkKeyOnly(options: DeriveOptions, format: DeriveFormat): void {
  if (!options.keyOnly) return;
  if (options.serials.length !== 1) throw new UserError('--key-only takes exactly one serial argument (for batches use --format csv or jsonl)');
  if (format !== 'plain') throw new UserError('--key-only prints the key alone; it cannot be combined with --format');
}

/** `derive stdin` by mistake in a terminal would wait silently: say what it waits for. */
const TTY_HINT = 'coap-psk derive: reading serials from the terminal, one per line; Ctrl-D to end (serials as arguments: coap-psk derive SN1 SN2; help: coap-psk derive --help)\n';

export async function runDerive(options: DeriveOptions): Promise<DeriveSummary> {
  const format = parseFormat(options.format);
  checkKeyOnly(options, format);
  const stdin = options.stdin ?? process.stdin;
  const stderr = options.stderr ?? process.stderr;
  const config = options.keyConfig ?? loadKeyConfig(options.env ?? process.env);
  const fmt = formatter(format, options.keyOnly === true);
  const started = Date.now();

  const deriver = await batchDeriver(config);
  let file: AtomicFile | undefined;
  let derived = 0;
  let skipped = 0;
  let warnings = 0;
  try {
    file = options.out ? await AtomicFile.create(options.out) : undefined;
    const out = file ? file.stream : (options.stdout ?? process.stdout);

    let bytesRead = 0;
    let totalBytes: number | undefined;
    if (options.serials.length === 0 && stdin === process.stdin) {
      try {
        const st = fstatSync(0);
        if (st.isFile()) totalBytes = st.size;
      } catch {
        /* not a file */
      }
    }
    const progress = file && stderr.isTTY ? new Progress(stderr, totalBytes) : undefined;
    // Typed serials are answered one by one, not once 512 of them have been typed.
    const interactive = options.serials.length === 0 && stdin.isTTY === true;
    if (interactive) stderr.write(TTY_HINT);
    const batchSize = interactive ? 1 : BATCH;
    const source = options.serials.length > 0 ? argsOf(options.serials) : linesOf(stdin, (n) => (bytesRead += n));

    if (fmt.header) await write(out, fmt.header);
    let batch: Buffer[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const keys = deriver.derive(batch);
      let text = '';
      for (let i = 0; i < batch.length; i++) {
        text += fmt.row(decodeSerial(batch[i]!)!, keys[i]!.toString('hex'));
        keys[i]!.fill(0);
      }
      derived += batch.length;
      batch = [];
      await write(out, text);
      progress?.update(derived, bytesRead);
    };

    for await (const { bytes, where } of source) {
      const problem = serialProblem(bytes);
      if (problem) {
        if (options.strict) throw new UserError(`${where}: ${problem}`);
        skipped++;
        stderr.write(`coap-psk: ${where}: ${problem}, skipped\n`);
        continue;
      }
      for (const w of serialWarnings(decodeSerial(bytes)!)) {
        warnings++;
        stderr.write(`coap-psk: ${where}: warning: ${w} (${JSON.stringify(decodeSerial(bytes))})\n`);
      }
      batch.push(bytes);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    progress?.update(derived, bytesRead, true);
    if (file) await file.commit();
    file = undefined;
  } finally {
    await file?.abort();
    await deriver.close();
  }
  if (skipped > 0 || warnings > 0 || options.out) stderr.write(`coap-psk: ${summaryLine(derived, skipped, warnings, options.out)}\n`);
  return { derived, skipped, warnings, seconds: (Date.now() - started) / 1000 };
}

function summaryLine(derived: number, skipped: number, warnings: number, out: string | undefined): string {
  const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  return `${plural(derived, 'key')} derived${out ? ` into ${out}` : ''}, ${skipped} skipped, ${plural(warnings, 'warning')}`;
}
