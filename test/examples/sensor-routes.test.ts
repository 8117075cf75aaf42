/**
 * examples/sensor-routes.ts mounted on the real server process (`serve --routes`), exercised by
 * libcoap's coap-client-openssl: Observe (RFC 7641) with `-s`, block-wise upload (RFC 7959
 * Block1) with `-b` and with a file larger than one CoAP payload.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { coapClient } from '../helpers/peers.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';

let token: TestToken;
let server: ServerProcess;
let dir: string;
const EXAMPLE = resolve('examples/sensor-routes.ts');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-example-'));
  token = await makeToken('examples-sensor');
  server = await startServerProcess({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex', SENSOR_INTERVAL_MS: '200' }, ['--routes', EXAMPLE]);
});

afterAll(async () => {
  await server?.stop();
  await token?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const uri = (path: string) => `coaps://127.0.0.1:${server.port}${path}`;
const client = (serial: string) => ({ impl: 'openssl' as const, identity: serial, key: expectedHexKey(serial) });

it('lists the observable sensor in /.well-known/core', async () => {
  const res = await coapClient({ ...client('SN-ex-core'), uri: uri('/.well-known/core') });
  expect(res.payload).toContain('</sensors/temperature>;rt="temperature";ct=0;obs');
});

it('pushes changing sensor values to an observer (coap-client -s)', async () => {
  const res = await coapClient({ ...client('SN-ex-obs'), uri: uri('/sensors/temperature'), extraArgs: ['-s', '3'], timeoutSec: 6 });
  // Each notification is logged by libcoap with its Observe option; -o collects the payloads.
  const notifications = [...(res.stdout + res.stderr).matchAll(/c:2\.05 .*Observe:(\d+)/g)].map((m) => Number(m[1]));
  expect(notifications.length, res.stderr).toBeGreaterThanOrEqual(3);
  // Observe numbers increase, and the values differ: it is a changing resource.
  for (let i = 1; i < notifications.length; i++) expect(notifications[i]).toBeGreaterThan(notifications[i - 1]!);
  const values = res.payload.match(/\d+\.\d{3}/g) ?? [];
  expect(new Set(values).size).toBeGreaterThanOrEqual(2);
});

it('answers a plain GET without Observe with one value', async () => {
  const res = await coapClient({ ...client('SN-ex-get'), uri: uri('/sensors/temperature') });
  expect(res.responseCode).toBe('2.05');
  expect(res.payload).toMatch(/^\d+\.\d{3}$/);
});

it.each([
  ['with -b 64 (47 blocks of 64 bytes)', 3000, ['-b', '64']],
  ['with a 5000-byte file (libcoap splits it by itself)', 5000, []],
])('receives a block-wise upload %s', async (_name, size, args) => {
  const serial = `SN-ex-up-${size}`;
  const body = randomBytes(size);
  const file = join(dir, `up-${size}.bin`);
  await writeFile(file, body);
  const put = await coapClient({ ...client(serial), method: 'put', uri: uri('/uploads/blob'), extraArgs: [...args, '-f', file], timeoutSec: 10 });
  expect(put.responseCode, put.stderr).toBe('2.04');
  // Block1 was used: libcoap logs the option on the requests it sent.
  expect(put.stdout + put.stderr).toMatch(/Block1:\d+\/M\//);
  const get = await coapClient({ ...client(serial), uri: uri('/uploads/blob') });
  expect(JSON.parse(get.payload)).toEqual({ bytes: size, sha256: createHash('sha256').update(body).digest('hex') });
});

it('keeps uploads per device: another serial does not see them', async () => {
  const res = await coapClient({ ...client('SN-ex-stranger'), uri: uri('/uploads/blob') });
  expect(res.responseCode).toBe('4.04');
});
