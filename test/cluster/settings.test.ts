/**
 * The workers setting: `--workers N|auto`, COAP_PSK_WORKERS, `listener.workers`; what Node 20
 * says to more than one worker; the restart backoff; a worker that cannot start.
 */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { RESTART_BASE_MS, RESTART_MAX_MS, RestartPolicy, HEALTHY_AFTER_MS } from '../../src/cluster/restart-policy.js';
import { reusePortSupported, workerCount } from '../../src/cluster/support.js';
import { resolveConfig } from '../../src/config/index.js';
import { runCli } from '../cli/run.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';

const SOFTWARE = { COAP_PSK_MASTER_KEY_HEX: '00112233445566778899aabbccddeeff' }; // test key only

describe('listener.workers', () => {
  it('takes a number or auto from a flag, the environment or the file', () => {
    expect(resolveConfig({ flags: { workers: '3' }, env: SOFTWARE }).raw.listener.workers).toBe(3);
    expect(resolveConfig({ env: { ...SOFTWARE, COAP_PSK_WORKERS: 'auto' } }).raw.listener.workers).toBe('auto');
    expect(resolveConfig({ env: SOFTWARE }).raw.listener.workers).toBeUndefined();
  });

  it('refuses anything else with one line naming the setting', () => {
    expect(() => resolveConfig({ flags: { workers: '0' }, env: SOFTWARE })).toThrow(/^config listener\.workers \(--workers\): must be ≥ 1$/);
    expect(() => resolveConfig({ env: { ...SOFTWARE, COAP_PSK_WORKERS: 'many' } })).toThrow(/^config listener\.workers \(COAP_PSK_WORKERS\): /);
  });

  it('counts auto as the cores this process may use, and defaults to 1', () => {
    expect(workerCount('auto', '--workers', '24.0.0')).toBe(availableParallelism());
    expect(workerCount(undefined, '--workers', '20.20.2')).toBe(1);
    expect(workerCount(1, '--workers', '20.20.2')).toBe(1);
  });

  it('needs reusePort (Node 22.12+) for more than one worker', () => {
    expect(reusePortSupported('20.20.2')).toBe(false);
    expect(reusePortSupported('22.11.0')).toBe(false);
    expect(reusePortSupported('22.12.0')).toBe(true);
    expect(reusePortSupported('24.22.3')).toBe(true);
    expect(() => workerCount(2, '--workers', '20.20.2')).toThrow(
      'config listener.workers (--workers): 2 workers need Node.js 22.12 or later (dgram reusePort); this is Node.js 20.20.2, which serves with --workers 1',
    );
  });
});

describe('coap-psk serve --workers (process)', () => {
  it.skipIf(reusePortSupported())(`fails at start with one line on this Node.js (${process.version})`, async () => {
    const r = await runCli(['serve', '--workers', '2', '--host', '127.0.0.1', '--port', '0'], SOFTWARE);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('coap-psk: config'))).toEqual([
      `coap-psk: config listener.workers (--workers): 2 workers need Node.js 22.12 or later (dgram reusePort); this is Node.js ${process.versions.node}, which serves with --workers 1`,
    ]);
  });

  it.skipIf(NO_REUSE_PORT)(`exits 1 with the worker's one line when the workers cannot start (a PKCS#11 module that does not load)${SKIP_REASON}`, async () => {
    const r = await runCli(['serve', '--workers', '2', '--host', '127.0.0.1', '--port', '0'], {
      COAP_PSK_PKCS11_MODULE: '/nonexistent/libpkcs11.so', COAP_PSK_TOKEN_LABEL: 'none', COAP_PSK_PIN: 'x', COAP_PSK_MASTER_KEY_HEX: undefined,
    });
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('coap-psk: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/libpkcs11\.so/);
  });
});

describe('RestartPolicy', () => {
  it('starts at once, then doubles while the worker dies young, up to the cap; a long life resets it', () => {
    const p = new RestartPolicy();
    const delays = Array.from({ length: 10 }, () => p.next(100));
    expect(delays.slice(0, 4)).toEqual([0, RESTART_BASE_MS, 2 * RESTART_BASE_MS, 4 * RESTART_BASE_MS]);
    expect(Math.max(...delays)).toBe(RESTART_MAX_MS);
    expect(p.next(HEALTHY_AFTER_MS)).toBe(0);
  });
});
