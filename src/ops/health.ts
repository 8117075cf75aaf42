/**
 * "Does the HSM answer?": one test derivation through the uncached key source, bounded by a
 * timeout. The probe identity is fixed and not a device's; the key it yields is zeroed at once.
 * Probes that overlap share one derivation, so a scraper hammering /healthz costs one HSM call
 * at a time.
 */
import type { KeyResolver } from '../keys/types.js';

export const HEALTH_PROBE_IDENTITY = 'coap-psk-healthz';

export interface HealthResult {
  ok: boolean;
  /** 'ok', 'timeout', 'no key' or the error's first line (never a secret: resolvers promise that). */
  detail: string;
  ms: number;
}

export class HealthProbe {
  private pending: Promise<HealthResult> | undefined;

  constructor(
    private readonly source: KeyResolver,
    private readonly timeoutMs = 2000,
    private readonly onResult?: (r: HealthResult) => void,
  ) {}

  check(): Promise<HealthResult> {
    this.pending ??= this.run().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async run(): Promise<HealthResult> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.timeoutMs)));
    const derivation = this.source.resolve(Buffer.from(HEALTH_PROBE_IDENTITY, 'utf8'));
    let result: HealthResult;
    try {
      const outcome = await Promise.race([derivation, timeout]);
      if (outcome === 'timeout') {
        // The late answer still carries key bytes: wipe them when it comes.
        derivation.then((cs) => cs.forEach((c) => c.psk.fill(0)), () => {});
        result = { ok: false, detail: 'timeout', ms: Date.now() - started };
      } else {
        outcome.forEach((c) => c.psk.fill(0));
        result = outcome.length > 0
          ? { ok: true, detail: 'ok', ms: Date.now() - started }
          : { ok: false, detail: 'no key', ms: Date.now() - started };
      }
    } catch (e) {
      result = { ok: false, detail: (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200), ms: Date.now() - started };
    } finally {
      clearTimeout(timer);
    }
    this.onResult?.(result);
    return result;
  }
}
