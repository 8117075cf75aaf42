/**
 * Shared set-up of the interop tests: a real SoftHSM token holding the test master key, and
 * the answer every peer's key must match, computed apart from the HSM (node:crypto).
 */
import { dtls as ndc } from 'node-dtls-client';
import { deriveSoftware } from '../../src/keys/derive.js';
import { afterAll, beforeAll } from 'vitest';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { createTestToken, type TestToken } from '../helpers/softhsm.js';

/** The master key of issue 3's known-answer vectors; a test key, never a real one. */
export const TEST_MASTER_HEX = '00112233445566778899aabbccddeeff';
export const TEST_KEY_LABEL = 'psk-master';

export function expectedPsk(serial: string, masterHex = TEST_MASTER_HEX): Buffer {
  return deriveSoftware(Buffer.from(masterHex, 'hex'), Buffer.from(serial, 'utf8'));
}

/** The 32 lowercase hex characters, as a password-style device (libcoap -k) holds them. */
export function expectedHexKey(serial: string, masterHex = TEST_MASTER_HEX): string {
  return expectedPsk(serial, masterHex).toString('hex');
}

export function makeToken(label: string, keys = [{ label: TEST_KEY_LABEL, hex: TEST_MASTER_HEX }]): Promise<TestToken> {
  return createTestToken({ label, pin: 'interop-test-pin', keys });
}

/** A node-dtls-client session to 127.0.0.1:port as `serial`, with the key derived from the test master. */
export function ndcConnect(port: number, serial: string, suite = 'TLS_PSK_WITH_AES_128_CCM_8'): Promise<ndc.Socket> {
  return new Promise((resolve, reject) => {
    const socket = ndc.createSocket({
      type: 'udp4',
      address: '127.0.0.1',
      port,
      psk: { [serial]: expectedPsk(serial).toString('latin1') },
      timeout: 5000,
      ciphers: [suite],
    } as unknown as ndc.Options);
    socket.once('connected', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * The real server process on a fresh token holding the test master key, for one test file:
 * started before its tests, stopped and removed after them. Read `.server` inside tests.
 */
export function serverOnTestToken(
  label: string,
  env: Record<string, string>,
  args: string[] = [],
  keys?: Parameters<typeof makeToken>[1],
): { server: ServerProcess; token: TestToken } {
  const ctx = {} as { server: ServerProcess; token: TestToken };
  beforeAll(async () => {
    ctx.token = await makeToken(label, keys);
    ctx.server = await startServerProcess({ ...ctx.token.env, ...env }, args);
  });
  afterAll(async () => {
    await ctx.server?.stop();
    await ctx.token?.cleanup();
  });
  return ctx;
}
