/**
 * Development resolver: the master keys live in this process's memory. Anyone who reads the
 * process or its environment has every device key, hence the warning at start.
 */
import { deriveSoftware, encodePsk, isDerivableIdentity } from './derive.js';
import type { KeyEncoding, KeyResolver, PskCandidate } from './types.js';

export interface SoftwareResolverOptions {
  /** Master keys newest first, each 16 bytes; copied, and zeroed on close. */
  keys: { label: string; master: Buffer }[];
  encoding?: KeyEncoding;
  acceptIdentity?: (identity: Buffer) => boolean;
  /** Where the start-up warning goes (default: stderr). */
  warn?: (line: string) => void;
}

export class SoftwareResolver implements KeyResolver {
  private readonly keys: { label: string; master: Buffer }[];
  private readonly encoding: KeyEncoding;
  private readonly accept: (identity: Buffer) => boolean;
  private closed = false;

  constructor(options: SoftwareResolverOptions) {
    if (options.keys.length === 0) throw new RangeError('SoftwareResolver needs at least one master key');
    for (const k of options.keys) {
      if (k.master.length !== 16) throw new RangeError(`master key ${k.label} must be 16 bytes`);
    }
    this.keys = options.keys.map((k) => ({ label: k.label, master: Buffer.from(k.master) }));
    this.encoding = options.encoding ?? 'raw';
    this.accept = options.acceptIdentity ?? isDerivableIdentity;
    const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
    warn('coap-psk: WARNING: software key mode — the master key is in process memory, for development only; use a PKCS#11 token in production');
  }

  get keyLabels(): string[] {
    return this.keys.map((k) => k.label);
  }

  /** The raw 16 bytes under one master key (newest by default). */
  deriveRaw(identity: Buffer, keyLabel = this.keys[0]!.label): Buffer {
    const key = this.keys.find((k) => k.label === keyLabel);
    if (!key || this.closed) throw new Error('software master key not available');
    return deriveSoftware(key.master, identity);
  }

  async resolve(identity: Buffer): Promise<PskCandidate[]> {
    if (this.closed) throw new Error('key resolver is closed');
    if (!this.accept(identity)) return [];
    return this.keys.map(({ label, master }) => {
      const raw = deriveSoftware(master, identity);
      const psk = encodePsk(raw, this.encoding);
      raw.fill(0);
      return { psk, keyLabel: label };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const k of this.keys) k.master.fill(0);
  }
}
