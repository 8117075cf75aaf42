/**
 * The Connection ID setting (issue 13): `--cid-length N`, COAP_PSK_DTLS_CID_LENGTH, config
 * dtls.cidLength; default 6, 0 turns CID off, 1..3 and over 255 refused at start with one line.
 */
import { describe, expect, it } from 'vitest';
import { printableConfig, resolveConfig } from '../../src/config/index.js';
import { UserError } from '../../src/errors.js';

const SOFTWARE = { COAP_PSK_MASTER_KEY_HEX: '00112233445566778899aabbccddeeff' };

describe('dtls.cidLength', () => {
  it('defaults to 6 and comes from the flag, the environment or the file', () => {
    expect(printableConfig(resolveConfig({ env: SOFTWARE })).dtls).toMatchObject({ cidLength: 6 });
    expect(resolveConfig({ env: SOFTWARE, flags: { cidLength: '0' } }).dtls.cidLength).toBe(0);
    const c = resolveConfig({ env: { ...SOFTWARE, COAP_PSK_DTLS_CID_LENGTH: '8' } });
    expect(c.dtls.cidLength).toBe(8);
    expect(c.origins.get('dtls.cidLength')).toBe('COAP_PSK_DTLS_CID_LENGTH');
  });

  it.each([
    [{ cidLength: '3' }, 'config dtls.cidLength (--cid-length): must be 0 (off) or 4..255'],
    [{ cidLength: '256' }, 'config dtls.cidLength (--cid-length): must be ≤ 255'],
  ])('%j is refused with one line', (flags, message) => {
    let error: unknown;
    try {
      resolveConfig({ env: SOFTWARE, flags });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe(message);
  });
});
