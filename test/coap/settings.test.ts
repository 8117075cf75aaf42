/**
 * The CoAP layer's settings in the one schema: coap.replyCacheBytes ↔ COAP_PSK_COAP_REPLY_CACHE_BYTES
 * ↔ --reply-cache-bytes, and the same rule for maxObserveRelations and maxBlock1Body; the old
 * --reply-cache-entries still accepted, as 400 bytes per entry; a bad value fails with one line.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/index.js';

const SOFTWARE = { COAP_PSK_MASTER_KEY_HEX: '00112233445566778899aabbccddeeff' }; // test key only

function failure(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

describe('CoAP settings', () => {
  it('leaves every bound unset (the server default) unless given', () => {
    expect(resolveConfig({ env: SOFTWARE }).coap).toEqual({ replyCacheBytes: undefined, maxObserveRelations: undefined, maxBlock1Body: undefined });
  });

  it('takes each bound from its flag or its variable', () => {
    const c = resolveConfig({
      env: { ...SOFTWARE, COAP_PSK_COAP_MAX_OBSERVE_RELATIONS: '4' },
      flags: { replyCacheBytes: '1048576', maxBlock1Body: '65536' },
    });
    expect(c.coap).toEqual({ replyCacheBytes: 1048576, maxObserveRelations: 4, maxBlock1Body: 65536 });
  });

  it('still accepts --reply-cache-entries, as 400 bytes per entry; --reply-cache-bytes wins', () => {
    expect(resolveConfig({ env: SOFTWARE, flags: { replyCacheEntries: '1000' } }).coap.replyCacheBytes).toBe(400_000);
    expect(resolveConfig({ env: SOFTWARE, flags: { replyCacheEntries: '1000', replyCacheBytes: '5000' } }).coap.replyCacheBytes).toBe(5000);
  });

  it('fails with one line naming a bad one', () => {
    expect(failure(() => resolveConfig({ env: { ...SOFTWARE, COAP_PSK_COAP_MAX_BLOCK1_BODY: 'lots' } }))).toContain('config coap.maxBlock1Body (COAP_PSK_COAP_MAX_BLOCK1_BODY): must be a number');
    expect(failure(() => resolveConfig({ env: SOFTWARE, flags: { replyCacheBytes: '-1' } }))).toContain('config coap.replyCacheBytes (--reply-cache-bytes): must be ≥ 0');
  });
});
