/**
 * libcoap's coap-client (openssl and gnutls builds), a real independent CoAP stack, against the
 * server in process: Observe with -s, keepalive pings with -K (an empty CON, answered by RST),
 * block-wise transfers both ways with -b / -f.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RouteResponse } from '../../src/coap/router.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { createServer, type CoapPskServer } from '../../src/server.js';
import { coapClient, type CoapImpl } from '../helpers/peers.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
const BIG = Buffer.from(Array.from({ length: 3000 }, (_, i) => 0x41 + (i % 26)));
const hexKey = (serial: string) => deriveSoftware(MASTER, Buffer.from(serial)).toString('hex');

let server: CoapPskServer;
let port: number;
let dir: string;
let tick = 0;
const observers = new Set<RouteResponse>();
const ended: string[] = [];
const uploads = new Map<string, string>();
let timer: NodeJS.Timeout;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-libcoap-'));
  server = await createServer({
    keys: new SoftwareResolver({ keys: [{ label: 'k-libcoap', master: Buffer.from(MASTER) }], encoding: 'hex', warn: () => {} }),
    routes: (router) => {
      router.get('/obs', { obs: true }, (_req, res) => {
        res.setOption('Content-Format', 'text/plain');
        if (!res.observing) return res.end(`t${tick}`);
        res.write(`t${tick}`);
        observers.add(res);
        res.onClose((reason) => {
          observers.delete(res);
          ended.push(reason);
        });
      });
      router.get('/quiet', { obs: true }, (_req, res) => res.write('quiet')); // a relation that never notifies
      router.get('/big', (_req, res) => res.end(BIG));
      router.put('/up', (req, res) => {
        uploads.set(req.identity, createHash('sha256').update(req.payload).digest('hex'));
        res.code = '2.04';
        res.end();
      });
    },
  });
  ({ port } = await server.listen(0, '127.0.0.1'));
  timer = setInterval(() => {
    tick++;
    for (const r of [...observers]) r.write(`t${tick}`);
  }, 300);
});

afterAll(async () => {
  clearInterval(timer);
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const uri = (path: string) => `coaps://127.0.0.1:${port}${path}`;

it.each<CoapImpl>(['openssl', 'gnutls'])('%s: observes with -s, and the relation ends when the client leaves', async (impl) => {
  const serial = `SN-lc-obs-${impl}`;
  ended.length = 0;
  const res = await coapClient({ impl, identity: serial, key: hexKey(serial), uri: uri('/obs'), extraArgs: ['-s', '2'], timeoutSec: 5 });
  const seq = [...(res.stdout + res.stderr).matchAll(/c:2\.05 .*Observe:(\d+)/g)].map((m) => Number(m[1]));
  expect(seq.length, res.stdout + res.stderr).toBeGreaterThanOrEqual(3);
  for (let i = 1; i < seq.length; i++) expect(seq[i]).toBeGreaterThan(seq[i - 1]!);
  for (let i = 0; i < 100 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(ended.length).toBe(1);
  expect(observers.size).toBe(0);
});

it('openssl: keepalive pings with -K are answered with RST, which libcoap takes as the pong', async () => {
  const serial = 'SN-lc-ping';
  const res = await coapClient({ impl: 'openssl', identity: serial, key: hexKey(serial), uri: uri('/quiet'), extraArgs: ['-s', '4', '-K', '1'], timeoutSec: 7, verbosity: 7 });
  const log = res.stdout + res.stderr;
  expect(log).toMatch(/t:CON c:0\.00 i:[0-9a-f]+ \{\}/);
  expect(log).toMatch(/t:RST c:0\.00 i:[0-9a-f]+ \{\}/);
  expect(log).toMatch(/t:ACK c:2\.05 .*:: 'quiet'/);
  expect(log).not.toMatch(/ping timeout|session .* disconnected/i);
});

it.each<[CoapImpl, string]>([
  ['openssl', '64'],
  ['gnutls', '256'],
])('%s: downloads a 3000-byte body block-wise with -b %s', async (impl, size) => {
  const serial = `SN-lc-b2-${impl}`;
  const res = await coapClient({ impl, identity: serial, key: hexKey(serial), uri: uri('/big'), extraArgs: ['-b', size], timeoutSec: 8 });
  expect(res.payload).toBe(BIG.toString('latin1'));
  expect(res.stdout + res.stderr).toMatch(new RegExp(`Block2:\\d+/M/${size}`));
});

it.each<[CoapImpl, string]>([
  ['openssl', '128'],
  ['gnutls', '1024'],
])('%s: uploads a 5000-byte file with -f and -b %s', async (impl, size) => {
  const serial = `SN-lc-b1-${impl}`;
  const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 256));
  const file = join(dir, `${impl}.bin`);
  await writeFile(file, body);
  const res = await coapClient({ impl, identity: serial, key: hexKey(serial), method: 'put', uri: uri('/up'), extraArgs: ['-b', size, '-f', file], timeoutSec: 8 });
  expect(res.responseCode, res.stdout + res.stderr).toBe('2.04');
  expect(uploads.get(serial)).toBe(createHash('sha256').update(body).digest('hex'));
});
