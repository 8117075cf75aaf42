/**
 * A deny list of serials, in front of every other resolver (and so in front of the cache): a
 * denied identity resolves to no key, and the handshake answers unknown_psk_identity.
 *
 * The file holds one serial per line; blank lines and lines starting with '#' are ignored.
 * reload() reads it again (the server calls it on SIGHUP); a reload that fails keeps the
 * previous list, so a typo in the file never opens the door to every denied device.
 */
import { readFile } from 'node:fs/promises';
import { UserError } from '../errors.js';
import type { KeyResolver, PskCandidate } from './types.js';

export class DenyListResolver implements KeyResolver {
  private denied = new Set<string>();

  private constructor(
    private readonly inner: KeyResolver,
    readonly file: string,
  ) {}

  /** Reads the file once; a missing or unreadable file fails the start with one line. */
  static async open(inner: KeyResolver, file: string): Promise<DenyListResolver> {
    const r = new DenyListResolver(inner, file);
    try {
      await r.reload();
    } catch (e) {
      throw new UserError(`COAP_PSK_DENY_LIST cannot be read: ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return r;
  }

  get size(): number {
    return this.denied.size;
  }

  /** Rejects (keeping the current list) when the file cannot be read. */
  async reload(): Promise<number> {
    const text = await readFile(this.file);
    this.denied = parseDenyList(text);
    return this.denied.size;
  }

  /** True when `identity` is on the list (so that a refusal can say why). */
  denies(identity: Buffer): boolean {
    // Keys are the identity bytes in hex: exact bytes, whatever their encoding.
    return this.denied.has(identity.toString('hex'));
  }

  resolve(identity: Buffer): Promise<PskCandidate[]> {
    if (this.denies(identity)) return Promise.resolve([]);
    return this.inner.resolve(identity);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export function parseDenyList(text: Buffer): Set<string> {
  const out = new Set<string>();
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(0x0a, start);
    if (end < 0) end = text.length;
    let line = text.subarray(start, end);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    const trimmed = line.toString('utf8').trim();
    if (trimmed !== '' && !trimmed.startsWith('#')) out.add(Buffer.from(trimmed, 'utf8').toString('hex'));
    start = end + 1;
  }
  return out;
}
