import { describe, expect, it } from 'vitest';
import { loadKeyConfig } from '../../src/config/keys.js';

describe('loadKeyConfig', () => {
  it('nothing set: the embedded development default', () => {
    const c = loadKeyConfig({}, { projectRoot: '/proj' });
    expect(c).toMatchObject({
      mode: 'pkcs11', devDefault: true, modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'coap-psk-dev',
      pinFile: '/proj/.dev/pin', keyLabels: ['psk-master'], encoding: 'raw', softhsmConf: '/proj/.dev/softhsm2.conf', poolSize: 4,
    });
  });

  it('honours SOFTHSM2_CONF as SoftHSM does', () => {
    expect(loadKeyConfig({ SOFTHSM2_CONF: '/etc/x.conf' }, { projectRoot: '/proj' })).toMatchObject({ softhsmConf: '/etc/x.conf' });
    const explicit = loadKeyConfig({ COAP_PSK_TOKEN_LABEL: 't', COAP_PSK_PIN: '1' });
    expect(explicit).toMatchObject({ devDefault: false, softhsmConf: undefined });
  });

  it('PKCS#11 settings: rotation list newest first, PIN from env or file, encoding', () => {
    const c = loadKeyConfig({
      COAP_PSK_PKCS11_MODULE: '/opt/hsm.so', COAP_PSK_TOKEN_LABEL: 'prod', COAP_PSK_PIN_FILE: '/run/pin',
      COAP_PSK_KEY_LABEL: 'm2025, m2024', COAP_PSK_KEY_ENCODING: 'hex', COAP_PSK_POOL_SIZE: '8',
    });
    expect(c).toMatchObject({ mode: 'pkcs11', modulePath: '/opt/hsm.so', tokenLabel: 'prod', pinFile: '/run/pin', keyLabels: ['m2025', 'm2024'], encoding: 'hex', poolSize: 8 });
    expect(loadKeyConfig({ COAP_PSK_TOKEN_LABEL: 't', COAP_PSK_PIN: 'abc' })).toMatchObject({ pin: Buffer.from('abc') });
  });

  it('software mode', () => {
    const c = loadKeyConfig({ COAP_PSK_MASTER_KEY_HEX: '00112233445566778899AABBCCDDEEFF' });
    expect(c.mode).toBe('software');
    if (c.mode === 'software') expect(c.keys.map((k) => k.label)).toEqual(['software']);
  });

  it('cache settings; 0 turns the cache off', () => {
    expect(loadKeyConfig({ COAP_PSK_CACHE_MAX: '0' }).cache.enabled).toBe(false);
    expect(loadKeyConfig({ COAP_PSK_CACHE_MAX: '50', COAP_PSK_CACHE_TTL_MS: '1000' }).cache).toMatchObject({ enabled: true, maxEntries: 50, ttlMs: 1000 });
  });

  it.each([
    [{ COAP_PSK_KEY_ENCODING: 'base64' }, /^COAP_PSK_KEY_ENCODING must be raw or hex/],
    [{ COAP_PSK_PIN: '1' }, /^COAP_PSK_TOKEN_LABEL is not set/],
    [{ COAP_PSK_TOKEN_LABEL: 't' }, /^COAP_PSK_PIN_FILE \(or COAP_PSK_PIN\) is not set/],
    [{ COAP_PSK_TOKEN_LABEL: 't', COAP_PSK_PIN: '1', COAP_PSK_PIN_FILE: '/f' }, /not both/],
    [{ COAP_PSK_TOKEN_LABEL: 't', COAP_PSK_PIN: '1', COAP_PSK_KEY_LABEL: 'a,,b' }, /^COAP_PSK_KEY_LABEL has an empty label/],
    [{ COAP_PSK_TOKEN_LABEL: 't', COAP_PSK_PIN: '1', COAP_PSK_KEY_LABEL: 'a,a' }, /^COAP_PSK_KEY_LABEL lists a label twice/],
    [{ COAP_PSK_MASTER_KEY_HEX: 'secretbutshort' }, /^COAP_PSK_MASTER_KEY_HEX must be 32 hex digits/],
    [{ COAP_PSK_MASTER_KEY_HEX: '00112233445566778899AABBCCDDEEFF', COAP_PSK_PIN: '1' }, /cannot be combined with COAP_PSK_PIN/],
    [{ COAP_PSK_POOL_SIZE: 'many' }, /^COAP_PSK_POOL_SIZE must be an integer/],
  ])('rejects %j with a line naming the setting', (env, message) => {
    let err: unknown;
    try {
      loadKeyConfig(env);
    } catch (e) {
      err = e;
    }
    expect((err as Error).name).toBe('UserError');
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('secretbutshort');
  });
});
