/**
 * KeyResolver backed by a PKCS#11 token: each device key is AES-CBC(master, 0, MD5(identity))
 * computed inside the token, so the master key never enters this process.
 *
 * pkcs11js allows one operation in flight per session, so async derivations take a session
 * from a small pool. When the token loses our sessions or our login (HSM restart, token
 * re-inserted), the pool is rebuilt once, with backoff, and the derivation retried.
 */
import { UserError } from '../errors.js';
import { isDerivableIdentity, md5Block } from './derive.js';
import { encodePsk } from './derive.js';
import {
  CBC_ZERO_IV, P11, RECOVERABLE, type Handle, type PKCS11, acquireModule, ckrCode, ckrName, encryptBlockSync, findSecretKey, login,
  openSession, reinitializeModule, releaseModule, requireSlot, safely,
} from './p11.js';
import type { KeyEncoding, KeyResolver, PskCandidate } from './types.js';
import { keyAttributes } from './admin.js';

export interface Pkcs11ResolverOptions {
  modulePath: string;
  tokenLabel: string;
  /** From a file or the environment, never from argv. Kept for logging in again. */
  pin: Buffer | string;
  /** Master key labels, newest first. Every label must exist at start. */
  keyLabels: string[];
  encoding?: KeyEncoding;
  /** Sessions for concurrent async derivations (default 4). */
  poolSize?: number;
  /** Attempts per derivation when the token loses sessions or login (default 3). */
  maxAttempts?: number;
  /** First and longest pause between recovery attempts (default 50 ms, 2 s). */
  backoffMs?: { initial: number; max: number };
  /** Which identities get keys at all; others resolve to [] (unknown). Default: 1..128 bytes. */
  acceptIdentity?: (identity: Buffer) => boolean;
  /** One-line operational messages (recoveries); never given secrets. Default: stderr. */
  log?: (line: string) => void;
  /**
   * Accept a master key that is extractable or not sensitive. Off by default: such a key can
   * leave the token, which defeats the point of keeping it in an HSM.
   */
  allowExtractableKey?: boolean;
  /**
   * Derive with synchronous C_Encrypt on the calling thread instead of pkcs11js's worker
   * threads. For a token inside this process (SoftHSM) that saves the thread hop, which costs
   * more than the AES block itself; for a network or USB HSM it would stall the event loop.
   */
  syncDerivation?: boolean;
}

/** The token state one generation of sessions belongs to; replaced whole on recovery. */
interface Generation {
  id: number;
  slot: Handle;
  /** label -> key handle, newest first; a label missing after recovery is absent. */
  keys: Map<string, Handle>;
  idle: Handle[];
  open: number;
}

interface Lease {
  gen: Generation;
  session: Handle;
}

function isTokenMissing(e: unknown): boolean {
  return e instanceof UserError && e.message.startsWith('PKCS#11 token not found');
}

class SessionFault {
  constructor(readonly code: number | undefined, readonly gen: Generation) {}
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Pkcs11Resolver implements KeyResolver {
  private readonly p11: PKCS11;
  private readonly opts: Required<Omit<Pkcs11ResolverOptions, 'pin'>>;
  private readonly pin: Buffer;
  private gen: Generation;
  private waiters: ((lease: Lease | Error) => void)[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  private recovering: Promise<void> | undefined;
  private backoff: number;
  /** deriveSync's sessions, one per master key label (see SyncStream). */
  private readonly syncStreams = new Map<string, SyncStream>();
  private closed = false;
  /** C_Encrypt calls running in pkcs11js's worker threads; the module is never re-initialized under one. */
  private running = 0;

  /** Opens the module, finds the token, logs in and finds every key: fails with one line if any is missing. */
  static async open(options: Pkcs11ResolverOptions): Promise<Pkcs11Resolver> {
    return new Pkcs11Resolver(options);
  }

  private constructor(options: Pkcs11ResolverOptions) {
    if (options.keyLabels.length === 0) throw new UserError('PKCS#11 key label list is empty (COAP_PSK_KEY_LABEL)');
    this.opts = {
      modulePath: options.modulePath,
      tokenLabel: options.tokenLabel,
      keyLabels: [...options.keyLabels],
      encoding: options.encoding ?? 'raw',
      poolSize: Math.max(1, options.poolSize ?? 4),
      maxAttempts: Math.max(1, options.maxAttempts ?? 3),
      backoffMs: options.backoffMs ?? { initial: 50, max: 2000 },
      acceptIdentity: options.acceptIdentity ?? isDerivableIdentity,
      log: options.log ?? ((line) => process.stderr.write(`coap-psk: ${line}\n`)),
      allowExtractableKey: options.allowExtractableKey ?? false,
      syncDerivation: options.syncDerivation ?? false,
    };
    // Our own copy: the caller may zero theirs.
    this.pin = Buffer.from(options.pin);
    this.backoff = this.opts.backoffMs.initial;
    this.p11 = acquireModule(this.opts.modulePath);
    try {
      this.gen = this.connect(0, true);
    } catch (e) {
      releaseModule(this.opts.modulePath);
      this.pin.fill(0);
      throw e;
    }
  }

  get keyLabels(): readonly string[] {
    return this.opts.keyLabels;
  }

  /**
   * Finds the token, logs in, finds the keys. At start every label must exist (a typo in the
   * rotation list would otherwise lock out a generation of devices silently).
   */
  private connect(id: number, strict: boolean): Generation {
    const slot = requireSlot(this.p11, this.opts.tokenLabel);
    const session = openSession(this.p11, slot);
    try {
      login(this.p11, session, this.pin);
      const keys = new Map<string, Handle>();
      for (const label of this.opts.keyLabels) {
        const key = findSecretKey(this.p11, session, label);
        if (key) {
          if (strict) this.checkKeyProtection(session, key, label);
          keys.set(label, key);
        } else if (strict) throw new UserError(`PKCS#11 key not found: label ${label}`);
      }
      if (keys.size === 0) throw new UserError(`PKCS#11 key not found: label ${this.opts.keyLabels[0]}`);
      return { id, slot, keys, idle: [session], open: 1 };
    } catch (e) {
      safely(() => this.p11.C_CloseSession(session));
      throw e;
    }
  }

  private checkKeyProtection(session: Handle, key: Handle, label: string): void {
    const a = keyAttributes(this.p11, session, key);
    if (a.extractable || !a.sensitive) {
      const weakness = a.extractable ? 'extractable' : 'not sensitive';
      if (!this.opts.allowExtractableKey) {
        throw new UserError(`PKCS#11 key ${label} is ${weakness}: refusing it (import it again with \`coap-psk hsm import-key\`, or allow it with --allow-extractable-key)`);
      }
      this.opts.log(`warning: PKCS#11 key ${label} is ${weakness}; accepted because --allow-extractable-key is set`);
    }
  }

  async resolve(identity: Buffer): Promise<PskCandidate[]> {
    if (this.closed) throw new Error('key resolver is closed');
    if (!this.opts.acceptIdentity(identity)) return [];
    const labels = [...this.gen.keys.keys()];
    let derived: Array<Buffer | undefined>;
    if (this.opts.syncDerivation) {
      derived = labels.map((label) => this.deriveSync([identity], label)[0]);
    } else {
      const block = md5Block(identity);
      derived = await Promise.all(labels.map((label) => this.derive(block, label)));
    }
    const candidates: PskCandidate[] = [];
    derived.forEach((d, i) => {
      if (d) candidates.push({ psk: encodePsk(d, this.opts.encoding), keyLabel: labels[i]! });
      d?.fill(0);
    });
    if (candidates.length === 0) throw new Error('PKCS#11 derivation failed: no master key available');
    return candidates;
  }

  /**
   * The 16 derived bytes for an MD5 block under one master key, or undefined when that key
   * disappeared from the token. Rejects after maxAttempts on a lost token.
   */
  derive(block: Buffer, keyLabel = this.opts.keyLabels[0]!): Promise<Buffer | undefined> {
    if (this.closed) return Promise.reject(new Error('key resolver is closed'));
    // close() waits for these: finalizing the module under a running C_Encrypt would crash.
    const op = this.deriveWithRetry(block, keyLabel);
    this.inflight.add(op);
    const forget = (): void => void this.inflight.delete(op);
    op.then(forget, forget);
    return op;
  }

  private async deriveWithRetry(block: Buffer, keyLabel: string): Promise<Buffer | undefined> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.deriveOnce(block, keyLabel);
      if (!(result instanceof SessionFault)) return result;
      const { code, gen } = result;
      if (code === undefined || !RECOVERABLE.has(code)) throw new Error(`PKCS#11 derivation failed: ${ckrName(code)}`);
      if (attempt >= this.opts.maxAttempts) {
        throw new Error(`PKCS#11 derivation failed after ${attempt} attempts: ${ckrName(code)}`);
      }
      await this.recover(gen, code);
      if (this.closed) throw new Error('key resolver is closed');
    }
  }

  /** One attempt; a token fault comes back as a value that names the generation it hit. */
  private async deriveOnce(block: Buffer, keyLabel: string): Promise<Buffer | undefined | SessionFault> {
    const gen = this.gen;
    let lease: Lease;
    try {
      lease = await this.acquire();
    } catch (e) {
      if (this.closed) throw e;
      return new SessionFault(ckrCode(e), gen);
    }
    let healthy = false;
    try {
      const key = lease.gen.keys.get(keyLabel);
      if (!key) {
        healthy = true;
        return undefined;
      }
      this.p11.C_EncryptInit(lease.session, CBC_ZERO_IV(), key);
      this.running++;
      const out = await this.p11.C_EncryptAsync(lease.session, block, Buffer.alloc(16)).finally(() => this.running--);
      healthy = true;
      this.backoff = this.opts.backoffMs.initial;
      return out;
    } catch (e) {
      return new SessionFault(ckrCode(e), lease.gen);
    } finally {
      this.release(lease.gen, lease.session, healthy);
    }
  }

  /**
   * Synchronous derivation of many identities under one master key, on a session of its own:
   * for batch use (`coap-psk derive`), where it beats the async path (no thread pool hop).
   * Returns the raw 16-byte keys; recovers once from a lost session, then throws.
   */
  deriveSync(identities: Buffer[], keyLabel = this.opts.keyLabels[0]!): Buffer[] {
    if (this.closed) throw new Error('key resolver is closed');
    const out: Buffer[] = [];
    let retried = false;
    while (out.length < identities.length) {
      const gen = this.gen;
      const key = gen.keys.get(keyLabel);
      if (!key) throw new UserError(`PKCS#11 key not found: label ${keyLabel}`);
      let stream = this.syncStreams.get(keyLabel);
      if (!stream || stream.gen !== gen.id) {
        if (stream) safely(() => this.p11.C_CloseSession(stream!.session));
        stream = openSyncStream(this.p11, gen, key);
        this.syncStreams.set(keyLabel, stream);
      }
      try {
        for (let i = out.length; i < identities.length; i++) out.push(encryptOnStream(this.p11, stream, key, md5Block(identities[i]!)));
      } catch (e) {
        const code = ckrCode(e);
        this.syncStreams.delete(keyLabel);
        safely(() => this.p11.C_CloseSession(stream!.session));
        if (retried || code === undefined || !RECOVERABLE.has(code)) throw new Error(`PKCS#11 derivation failed: ${ckrName(code)}`);
        retried = true;
        this.reconnect(gen, code);
      }
    }
    return out;
  }

  private acquire(): Promise<Lease> {
    if (this.closed) return Promise.reject(new Error('key resolver is closed'));
    const gen = this.gen;
    const idle = gen.idle.pop();
    if (idle) return Promise.resolve({ gen, session: idle });
    if (gen.open < this.opts.poolSize) {
      try {
        const session = openSession(this.p11, gen.slot);
        gen.open++;
        return Promise.resolve({ gen, session });
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      this.waiters.push((s) => (s instanceof Error ? reject(s) : resolve(s)));
    });
  }

  private release(gen: Generation, session: Handle, healthy: boolean): void {
    if (gen !== this.gen || !healthy || this.closed) {
      // A session of a lost generation is useless; close it and let the pool open a fresh one.
      safely(() => this.p11.C_CloseSession(session));
      gen.open--;
      const next = this.waiters.shift();
      if (next) this.acquire().then(next, next);
      return;
    }
    const next = this.waiters.shift();
    if (next) next({ gen, session });
    else gen.idle.push(session);
  }

  /** One recovery at a time; callers of an already replaced generation simply retry. */
  private async recover(gen: Generation, code: number): Promise<void> {
    if (gen !== this.gen) return;
    if (!this.recovering) {
      this.recovering = (async () => {
        const pause = this.backoff;
        this.backoff = Math.min(this.backoff * 2, this.opts.backoffMs.max);
        this.opts.log(`PKCS#11 token lost (${ckrName(code)}); logging in again in ${pause} ms`);
        await sleep(pause);
        if (this.closed) return;
        try {
          try {
            this.reconnect(gen, code);
          } catch (e) {
            if (!isTokenMissing(e)) throw e;
            // SoftHSM, and modules like it, see a token that went away and came back only after
            // C_Finalize / C_Initialize. Never under a running C_Encrypt: wait for those first.
            await this.quiesce();
            if (this.closed) return;
            reinitializeModule(this.opts.modulePath);
            this.reconnect(gen, P11.CKR_OK);
          }
        } catch (e) {
          // Keep the old generation: the next failure triggers the next, longer pause.
          this.opts.log(`PKCS#11 reconnect failed: ${e instanceof UserError ? e.message : ckrName(ckrCode(e))}`);
        }
      })().finally(() => (this.recovering = undefined));
    }
    await this.recovering;
  }

  /** Resolves once no C_Encrypt is running (bounded: 5 s, then it goes ahead regardless of nothing). */
  private async quiesce(): Promise<void> {
    for (let waited = 0; this.running > 0 && waited < 5000; waited += 10) await sleep(10);
  }

  private reconnect(gen: Generation, code: number): void {
    if (gen !== this.gen) return;
    if (code === P11.CKR_CRYPTOKI_NOT_INITIALIZED) reinitializeModule(this.opts.modulePath);
    for (const s of gen.idle) safely(() => this.p11.C_CloseSession(s));
    gen.open -= gen.idle.length;
    gen.idle = [];
    this.gen = this.connect(gen.id + 1, false);
    const missing = this.opts.keyLabels.filter((l) => !this.gen.keys.has(l));
    this.opts.log(`PKCS#11 session restored${missing.length ? `; keys missing: ${missing.join(', ')}` : ''}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w(new Error('key resolver is closed'));
    await Promise.allSettled([...this.inflight]);
    for (const s of this.gen.idle) safely(() => this.p11.C_CloseSession(s));
    this.gen.idle = [];
    for (const stream of this.syncStreams.values()) safely(() => this.p11.C_CloseSession(stream.session));
    this.syncStreams.clear();
    this.pin.fill(0);
    releaseModule(this.opts.modulePath);
  }
}

/**
 * A session that derives synchronously under one master key. AES-CBC over one block with a zero
 * IV is AES-ECB of that block, and ECB carries nothing from one block to the next: so one
 * C_EncryptInit(CKM_AES_ECB) left open serves every derivation as a single C_EncryptUpdate,
 * instead of C_EncryptInit + C_Encrypt each time (SoftHSM here: ~480,000 instead of ~39,000
 * derivations/s). A token that refuses ECB for the key (CKA_ALLOWED_MECHANISMS), or that holds
 * the block back instead of answering it at once, gets the one-shot CBC calls instead.
 */
interface SyncStream {
  readonly gen: number;
  readonly session: Handle;
  ecb: boolean;
}

function openSyncStream(p11: PKCS11, gen: { id: number; slot: Handle }, key: Handle): SyncStream {
  const session = openSession(p11, gen.slot);
  let ecb = true;
  try {
    p11.C_EncryptInit(session, { mechanism: P11.CKM_AES_ECB }, key);
  } catch {
    ecb = false;
  }
  return { gen: gen.id, session, ecb };
}

function encryptOnStream(p11: PKCS11, stream: SyncStream, key: Handle, block: Buffer): Buffer {
  if (stream.ecb) {
    const out = p11.C_EncryptUpdate(stream.session, block, Buffer.alloc(16));
    if (out.length === 16) return out;
    // The token buffers: end the stream and use one-shot CBC on this session from now on.
    stream.ecb = false;
    safely(() => p11.C_EncryptFinal(stream.session, Buffer.alloc(32)));
  }
  return encryptBlockSync(p11, stream.session, key, block);
}
