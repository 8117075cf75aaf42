/**
 * What a newcomer sees in a terminal (issue 16, items 1 and 8): the real binary on a pty.
 * Logs are readable there (pino-pretty), not JSON; --print-config says so; `derive` with no
 * serial says that it reads them from the terminal instead of waiting silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestToken, createTestToken } from '../helpers/softhsm.js';
import { freeUdpPort } from '../helpers/ports.js';
import { MASTER_HEX, VECTORS } from '../keys/vectors.js';
import { BIN } from './run.js';
import { onPty, type PtyRun } from './pty.js';

let token: TestToken;
const runs: PtyRun[] = [];

beforeAll(async () => {
  token = await createTestToken({ label: 'pty-test', pin: '2468', keys: [{ label: 'k1', hex: MASTER_HEX }] });
});
afterAll(async () => {
  for (const r of runs) r.kill();
  await token?.cleanup();
});

function pty(args: string[], env: Record<string, string> = {}): PtyRun {
  const env2 = { ...process.env, ...token.env, ...env };
  delete env2.COAP_PSK_LOG_FORMAT;
  const r = onPty([process.execPath, BIN, ...args], env2);
  runs.push(r);
  return r;
}

describe('on a terminal', () => {
  it('serve logs readable lines, not JSON, and stops on Ctrl-C', async () => {
    const port = await freeUdpPort();
    const r = pty(['serve', '--host', '127.0.0.1', '--port', String(port)]);
    await r.waitFor(/coap-psk serving CoAP over DTLS 1\.2 PSK/);
    expect(r.screen()).toMatch(/INFO.*coap-psk serving CoAP over DTLS 1\.2 PSK/);
    expect(r.screen()).not.toContain('{"level"');
    r.type('\x03');
    expect(await r.exited()).toBe(0);
    expect(r.screen()).toMatch(/INFO.*stopped/);
  }, 60_000);

  it('--print-config shows the format the terminal gets: pretty', async () => {
    const r = pty(['serve', '--print-config']);
    expect(await r.exited()).toBe(0);
    expect(r.screen()).toContain('"format": "pretty"');
  }, 30_000);

  it('derive with no serial says that it reads them from the terminal, then derives what is typed', async () => {
    const r = pty(['derive']);
    await r.waitFor(/reading serials from the terminal, one per line; Ctrl-D to end/, 10_000);
    r.type('SN12345\n');
    await r.waitFor(new RegExp(`SN12345 ${VECTORS[0]!.psk}`), 10_000);
    r.type('\x04');
    expect(await r.exited()).toBe(0);
  }, 30_000);
});
