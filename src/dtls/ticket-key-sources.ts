/**
 * Where ticket secrets come from (docs/resumption.md, "Where the ticket secret comes from"):
 *
 * - `PeriodTicketKeys`: derived from a key that only encrypts blocks (in production a second AES
 *   key in the HSM, passed in as `encryptBlock`, since src/dtls does not know src/keys), one
 *   secret per rotation period p = floor(unix_ms / rotationMs):
 *     secret(p) = E("cpsk-ticket" ‖ 0x01 ‖ uint32(p)) ‖ E("cpsk-ticket" ‖ 0x02 ‖ uint32(p))
 *   and the ring [secret(p), secret(p-1), secret(p+1)]: every server with the same key has the
 *   same ring at the same time, with no secret to distribute, and it rotates by itself.
 * - `parseTicketKeyFile`: a file of 64-hex-character secrets, one per line, the first sealing.
 * - neither: `TicketKeyRing.random()`, rotated with `rotate(randomBytes(32))` every period.
 */

import { TICKET_KEY_SECRET_LENGTH, TicketKeyRing } from './ticket-keys.js';

const LABEL = Buffer.from('cpsk-ticket'); // 11 bytes: label ‖ counter(1) ‖ period(4) = one AES block

/** The two 16-byte blocks whose encryptions make secret(period). */
export function ticketSecretBlocks(period: number): [Buffer, Buffer] {
  if (!Number.isInteger(period) || period < 0 || period > 0xffffffff) throw new RangeError(`period ${period} outside uint32`);
  const block = (counter: number) => {
    const b = Buffer.alloc(16);
    LABEL.copy(b, 0);
    b[11] = counter;
    b.writeUInt32BE(period, 12);
    return b;
  };
  return [block(1), block(2)];
}

export type EncryptBlock = (block: Buffer) => Buffer | Promise<Buffer>;

export class PeriodTicketKeys {
  private secrets = new Map<number, Buffer>();
  private current: TicketKeyRing | undefined;
  private currentPeriod = -1;

  constructor(
    private readonly encryptBlock: EncryptBlock,
    readonly rotationMs: number,
  ) {
    if (!Number.isInteger(rotationMs) || rotationMs < 1000) throw new RangeError('ticket key rotation must be at least 1000 ms');
  }

  periodAt(nowMs: number): number {
    return Math.floor(nowMs / this.rotationMs);
  }

  /** Ms from `nowMs` to the next period: when to call update() again. */
  msUntilNextPeriod(nowMs: number): number {
    return (this.periodAt(nowMs) + 1) * this.rotationMs - nowMs;
  }

  /**
   * Derives what the period of `nowMs` needs (at most two new secrets per period, four block
   * encryptions: the HSM is asked once per period, never per handshake) and returns its ring.
   */
  async update(nowMs = Date.now()): Promise<TicketKeyRing> {
    const p = this.periodAt(nowMs);
    if (this.current && p === this.currentPeriod) return this.current;
    const wanted = [p, p - 1, p + 1].filter((q) => q >= 0);
    for (const q of wanted) if (!this.secrets.has(q)) this.secrets.set(q, await this.derive(q));
    for (const q of [...this.secrets.keys()]) {
      if (!wanted.includes(q)) {
        this.secrets.get(q)!.fill(0);
        this.secrets.delete(q);
      }
    }
    this.current = new TicketKeyRing(wanted.map((q) => this.secrets.get(q)!));
    this.currentPeriod = p;
    return this.current;
  }

  /** The ring of the last update(); undefined before the first. */
  get ring(): TicketKeyRing | undefined {
    return this.current;
  }

  private async derive(period: number): Promise<Buffer> {
    const [a, b] = ticketSecretBlocks(period);
    const out = Buffer.concat([await this.encryptBlock(a), await this.encryptBlock(b)]);
    if (out.length !== TICKET_KEY_SECRET_LENGTH) throw new Error('ticket key derivation: the block cipher did not return 16-byte blocks');
    return out;
  }
}

/**
 * The secrets of a ticket key file: one secret per line as 64 hex characters, the first one
 * sealing; empty lines and lines starting with # are skipped. A malformed file gives an error
 * that names the line number, never its content.
 */
export function parseTicketKeyFile(text: string): { secrets: Buffer[] } | { error: string } {
  const secrets: Buffer[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!/^[0-9a-fA-F]{64}$/.test(line)) return { error: `line ${i + 1}: not a 64-hex-character ticket key` };
    secrets.push(Buffer.from(line, 'hex'));
  }
  if (secrets.length === 0) return { error: 'no ticket key in the file' };
  return { secrets };
}
