/**
 * The attack tests' target: the real server (createServer, the composition `coap-psk serve`
 * runs) in this process, bound to 127.0.0.1, with its keys derived by a real SoftHSM token
 * through the real resolver stack (PKCS#11 source behind the cache). `wrap` puts a test
 * resolver (latency, counting) between the cache and the token, where a slow HSM would be.
 *
 * In-process so that a test can read the server's own counters (stats, handshakeCount,
 * pendingKeyLookups) besides what a real coap-client sees from outside.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CachingResolver } from '../../src/keys/cache.js';
import { loadKeyConfig, openKeySource } from '../../src/config/keys.js';
import type { KeyResolver, PskCandidate } from '../../src/keys/types.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import type { DtlsServerConfig } from '../../src/dtls/config.js';
import { coapClient, type CoapClientResult } from '../helpers/peers.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, expectedPsk, makeToken } from '../interop/fixture.js';

export const MIB = 1024 * 1024;
/** The bound on what an attack may make the server keep. */
export const MEMORY_BOUND = 64 * MIB;

export interface AttackTarget {
  server: CoapPskServer;
  port: number;
  /** Lookups that reached the token (below the cache). */
  readonly hsmCalls: number;
  /** Most lookups waiting below the cache at once. */
  readonly maxConcurrentLookups: number;
  /** A real coap-client-openssl asks /whoami as `serial`. */
  whoami(serial: string, timeoutSec?: number): Promise<CoapClientResult>;
  close(): Promise<void>;
}

export interface TargetOptions {
  label: string;
  /** Extra time each token derivation takes (a slow or busy HSM). */
  latencyMs?: number;
  dtls?: Partial<DtlsServerConfig>;
}

/** The token's derivation, counted and optionally delayed. */
class InstrumentedResolver implements KeyResolver {
  calls = 0;
  inflight = 0;
  maxInflight = 0;
  constructor(private readonly inner: KeyResolver, private readonly latencyMs: number) {}
  async resolve(identity: Buffer): Promise<PskCandidate[]> {
    this.calls++;
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    try {
      if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
      return await this.inner.resolve(identity);
    } finally {
      this.inflight--;
    }
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export async function startTarget(opts: TargetOptions): Promise<AttackTarget> {
  const token: TestToken = await makeToken(opts.label);
  const config = loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' });
  const source = await openKeySource(config);
  const instrumented = new InstrumentedResolver(source, opts.latencyMs ?? 0);
  const keys = new CachingResolver(instrumented, config.cache);
  const server = await createServer({ keys, dtls: opts.dtls });
  const { port } = await server.listen(0, '127.0.0.1');
  return {
    server,
    port,
    get hsmCalls() {
      return instrumented.calls;
    },
    get maxConcurrentLookups() {
      return instrumented.maxInflight;
    },
    whoami: (serial, timeoutSec = 5) =>
      coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${port}/whoami`, timeoutSec }),
    async close() {
      await server.close();
      await token.cleanup();
    },
  };
}

/** The PSK bytes a device with this serial holds (hex encoding, as coap-client -k takes it). */
export function devicePsk(serial: string): Buffer {
  return Buffer.from(expectedPsk(serial).toString('hex'), 'ascii');
}

/**
 * What the process keeps: V8's heap and the memory of Buffers, after a full GC. RSS is not the
 * measure: it also holds the garbage of a flood until V8 collects it and the pages V8 keeps
 * after that, which differ by Node version (CI saw 71-78 MiB of RSS growth on Node 24 where
 * Node 20 stayed under 64 for the same floods).
 */
export function retainedBytes(): number {
  collectGarbage();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

let gc: (() => void) | undefined;
function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  gc();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `datagrams` from `sockets` in paced batches, so the kernel buffers do not overflow. */
export async function paced(count: number, batch: number, send: (i: number) => void): Promise<void> {
  for (let i = 0; i < count; i += batch) {
    for (let j = i; j < Math.min(count, i + batch); j++) send(j);
    await sleep(2);
  }
}
