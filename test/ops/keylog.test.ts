/**
 * Wireshark decryption, as a lab engineer does it: capture a handshake and a CoAP request on
 * loopback with tshark, then decrypt the capture with the server's NSS key log and find the
 * request's Uri-Path, with libcoap's OpenSSL and GnuTLS clients.
 *
 * The server is limited to TLS_PSK_WITH_AES_128_CCM_8 (the CoAP mandatory suite), as the README
 * tells lab engineers to do while capturing: the tshark of Debian 12 (Wireshark 4.0) finds the
 * master secret of a TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 session but fails its auth tag
 * (its DTLS ChaCha20 nonce), so it cannot show that suite's CoAP.
 *
 * Capturing needs root (or CAP_NET_RAW for dumpcap); without it the test is skipped, saying so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKeyConfig, openKeySource } from '../../src/config/keys.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { coapClient, runBounded, type CoapImpl } from '../helpers/peers.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';

const canCapture = process.getuid?.() === 0 && spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
if (!canCapture) console.warn('keylog capture test skipped: capturing on lo needs root and tshark (Debian package tshark)');

let token: TestToken;
let dir: string;
let keylog: string;
let server: CoapPskServer;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-keylog-'));
  keylog = join(dir, 'keys.log');
  token = await makeToken('ops-keylog');
  const config = loadKeyConfig({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' });
  server = await createServer({ keys: await openKeySource(config), keylog, dtls: { cipherSuites: [0xc0a8] }, metrics: { processMetrics: false } });
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
  await token?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('creates the key log with mode 0600', async () => {
  expect((await stat(keylog)).mode & 0o777).toBe(0o600);
});

/** tshark on lo for our port only; resolves once it is capturing. Hard limit: `seconds`. */
async function startCapture(file: string, seconds: number) {
  const child = spawn('tshark', ['-i', 'lo', '-f', `udp port ${port}`, '-w', file, '-a', `duration:${seconds}`, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const kill = setTimeout(() => child.kill('SIGKILL'), (seconds + 5) * 1000);
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`tshark did not start capturing: ${stderr}`)), 10_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      // "Capturing on 'lo'" comes before the capture is live; "Capture started." after.
      if (/Capture started/.test(stderr)) {
        clearTimeout(timer);
        ready();
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      fail(new Error(`tshark exited: ${stderr}`));
    });
  });
  return {
    /**
     * Stops capturing (SIGINT makes tshark finish the file) and waits for it. dumpcap writes
     * what it captured a little later: first wait (bounded, 5 s) until the file has grown past
     * its header and stopped growing.
     */
    async stop() {
      let last = -1;
      for (let i = 0; i < 50; i++) {
        const size = (await stat(file).catch(() => undefined))?.size ?? 0;
        if (size > 512 && size === last) break;
        last = size;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
      clearTimeout(kill);
    },
  };
}

describe.skipIf(!canCapture)('tshark decrypts a capture with the key log', () => {
  it.each<CoapImpl>(['openssl', 'gnutls'])('coap-client-%s', async (impl) => {
    const serial = `SN-keylog-${impl}`;
    const pcap = join(dir, `${impl}.pcapng`);
    const capture = await startCapture(pcap, 20);
    try {
      const res = await coapClient({ impl, identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${port}/whoami` });
      expect(res.ok, res.stderr).toBe(true);
    } finally {
      await capture.stop();
    }
    // The session's line is in the file once written; no secret of ours reaches tshark's argv
    // but the key log path.
    const lines = (await readFile(keylog, 'utf8')).trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/^CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}$/);

    const decoded = await runBounded('tshark', [
      // Off port 5684, tshark needs telling both layers: DTLS on the UDP port, CoAP inside it.
      '-r', pcap, '-o', `tls.keylog_file:${keylog}`, '-d', `udp.port==${port},dtls`, '-d', `dtls.port==${port},coap`,
      '-Y', 'coap', '-T', 'fields', '-e', 'coap.code', '-e', 'coap.opt.uri_path', '-e', 'coap.payload',
    ], { timeoutMs: 30_000 });
    expect(decoded.exitCode, decoded.stderr).toBe(0);
    // GET (code 1) /whoami, then 2.05 (code 69) with the serial as text/plain payload.
    expect(decoded.stdout).toMatch(/^1\twhoami\t/m);
    expect(decoded.stdout).toMatch(new RegExp(`^69\t\t.*text/plain.*Length: ${serial.length}$`, 'm'));

    // Without the key log the same capture shows no CoAP at all.
    const blind = await runBounded('tshark', ['-r', pcap, '-d', `udp.port==${port},dtls`, '-d', `dtls.port==${port},coap`, '-Y', 'coap'], { timeoutMs: 30_000 });
    expect(blind.stdout.trim()).toBe('');
  });
});
