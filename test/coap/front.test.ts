import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import coap from 'coap';
import type { IncomingMessage } from 'coap';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoapFront, loadRoutes } from '../../src/coap/front.js';
import type { CoapFront } from '../../src/coap/front.js';
import { Router } from '../../src/coap/router.js';
import { LOOPBACK, UdpEndpoint, clientSocket } from '../helpers/udp-endpoint.js';

interface Client {
  sock: dgram.Socket;
  agent: coap.Agent;
  port: number;
}

async function newClient(endpoint: UdpEndpoint, identity: string): Promise<Client> {
  const sock = await clientSocket();
  const port = sock.address().port;
  endpoint.accept(port, identity);
  return { sock, agent: new coap.Agent({ socket: sock }), port };
}

function request(
  client: Client,
  endpoint: UdpEndpoint,
  pathname: string,
  opts: { method?: string; query?: string; payload?: Buffer } = {},
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no response to ${pathname} within 5 s`)), 5000);
    const req = coap.request({
      hostname: LOOPBACK,
      port: endpoint.port,
      pathname,
      query: opts.query,
      method: (opts.method ?? 'GET') as 'GET',
      agent: client.agent,
      confirmable: true,
    });
    req.on('response', (res: IncomingMessage) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.on('error', (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(opts.payload);
  });
}

describe('CoAP front over a SecureEndpoint', () => {
  let endpoint: UdpEndpoint;
  let front: CoapFront;
  let alice: Client;
  let bob: Client;
  const logged: Array<{ message: string; error: unknown }> = [];
  const counts = { count: 0, big: 0 };
  const big = Buffer.alloc(4000, 0).map((_, i) => i % 251);
  let routeDir: string;

  beforeAll(async () => {
    endpoint = await UdpEndpoint.open();
    const router = new Router({ logger: { error: (message, error) => logged.push({ message, error }) } });
    router.get('/devices/self/temp', (req, res) => res.end(`self:${req.identity}`));
    router.get('/devices/:id/temp', { rt: 'temperature', if: 'sensor', ct: 0, obs: true }, (req, res) => {
      res.end(JSON.stringify({ params: req.params, unit: req.query.get('unit'), who: req.identity, key: req.keyLabel }));
    });
    router.put('/devices/:id/temp', (req, res) => {
      res.code = '2.04';
      res.end(`${req.params.id}=${req.payload.toString()}`);
    });
    router.get('/files/*', (req, res) => res.end(req.params.rest));
    router.get('/count', (_req, res) => res.end(String(++counts.count)));
    router.get('/big', (_req, res) => {
      counts.big++;
      res.end(big);
    });
    router.get('/boom', () => {
      throw new Error('db password is hunter2');
    });
    router.post('/later', async () => {
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('async failure detail');
    });
    router.get('/vanish', (req, res) => {
      endpoint.forget(req.rsinfo.port); // the DTLS session ends while the handler runs
      res.end('too late');
    });
    router.use(async (req, res, next) => {
      if (req.identity.startsWith('SN-BLOCKED')) {
        res.code = '4.03';
        res.end();
        return;
      }
      await next();
    });
    routeDir = mkdtempSync(join(tmpdir(), 'coap-routes-'));
    const file = join(routeDir, 'routes.mjs');
    writeFileSync(file, "export default (router) => { router.get('/loaded', { rt: 'x.loaded' }, (req, res) => res.end('from file')); };\n");
    await loadRoutes(file, router);
    front = await createCoapFront(endpoint, router, { logger: { error: (message, error) => logged.push({ message, error }) } });
    alice = await newClient(endpoint, 'SN-ALICE-0001');
    bob = await newClient(endpoint, 'SN-BOB-0002');
  });

  afterAll(async () => {
    await front.close();
    alice.sock.close();
    bob.sock.close();
    await endpoint.close();
    rmSync(routeDir, { recursive: true, force: true });
  });

  it('answers /whoami with the identity mapped to each client port, as text/plain', async () => {
    const a = await request(alice, endpoint, '/whoami');
    const b = await request(bob, endpoint, '/whoami');
    expect(a.code).toBe('2.05');
    expect(a.payload.toString()).toBe('SN-ALICE-0001');
    expect(a.headers['Content-Format']).toBe('text/plain');
    expect(b.payload.toString()).toBe('SN-BOB-0002');
  });

  it('lists the mounted routes in /.well-known/core, with attributes and URI-template params', async () => {
    const res = await request(alice, endpoint, '/.well-known/core');
    expect(res.code).toBe('2.05');
    expect(res.headers['Content-Format']).toBe('application/link-format');
    expect(res.payload.toString()).toBe(
      [
        '</whoami>;ct=0',
        '</devices/self/temp>',
        '</devices/{id}/temp>;rt="temperature";if="sensor";ct=0;obs',
        '</files/{+rest}>',
        '</count>',
        '</big>',
        '</boom>',
        '</later>',
        '</vanish>',
        '</loaded>;rt="x.loaded"',
      ].join(','),
    );
    const filtered = await request(alice, endpoint, '/.well-known/core', { query: 'rt=temp*' });
    expect(filtered.payload.toString()).toBe('</devices/{id}/temp>;rt="temperature";if="sensor";ct=0;obs');
  });

  it('passes params, query and identity to handlers, preferring literal segments', async () => {
    const res = await request(bob, endpoint, '/devices/abc-42/temp', { query: 'unit=C' });
    expect(JSON.parse(res.payload.toString())).toEqual({
      params: { id: 'abc-42' },
      unit: 'C',
      who: 'SN-BOB-0002',
      key: 'master-2024',
    });
    expect((await request(bob, endpoint, '/devices/self/temp')).payload.toString()).toBe('self:SN-BOB-0002');
    const put = await request(bob, endpoint, '/devices/abc-42/temp', { method: 'PUT', payload: Buffer.from('21.5') });
    expect(put.code).toBe('2.04');
    expect(put.payload.toString()).toBe('abc-42=21.5');
    expect((await request(bob, endpoint, '/files/a/b/c.txt')).payload.toString()).toBe('a/b/c.txt');
    expect((await request(bob, endpoint, '/loaded')).payload.toString()).toBe('from file');
  });

  it('answers 4.04 for an unknown path and 4.05 for a known path with another method', async () => {
    expect((await request(alice, endpoint, '/nowhere')).code).toBe('4.04');
    expect((await request(alice, endpoint, '/devices/x')).code).toBe('4.04');
    expect((await request(alice, endpoint, '/whoami', { method: 'POST' })).code).toBe('4.05');
    expect((await request(alice, endpoint, '/devices/x/temp', { method: 'DELETE' })).code).toBe('4.05');
  });

  it('answers 5.00 without the error text when a handler throws or rejects, and logs it', async () => {
    logged.length = 0;
    const thrown = await request(alice, endpoint, '/boom');
    expect(thrown.code).toBe('5.00');
    expect(thrown.payload.toString()).not.toContain('hunter2');
    const rejected = await request(alice, endpoint, '/later', { method: 'POST' });
    expect(rejected.code).toBe('5.00');
    expect(rejected.payload.length).toBe(0);
    expect(logged.map((l) => (l.error as Error).message)).toEqual(['db password is hunter2', 'async failure detail']);
    expect(logged[0]!.message).toContain('SN-ALICE-0001');
  });

  it('runs the handler once for a duplicate CON and sends the same reply to both', async () => {
    const raw = await clientSocket();
    endpoint.accept(raw.address().port, 'SN-RAW-0003');
    // CON GET, TKL 2, message ID 0x1234, token 0xbeef, Uri-Path "count".
    const con = Buffer.concat([Buffer.from([0x42, 0x01, 0x12, 0x34, 0xbe, 0xef, 0xb5]), Buffer.from('count')]);
    const exchange = () =>
      new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply within 3 s')), 3000);
        raw.once('message', (msg) => {
          clearTimeout(timer);
          resolve(msg);
        });
        raw.send(con, endpoint.port, LOOPBACK);
      });
    try {
      const before = counts.count;
      const first = await exchange();
      const second = await exchange();
      expect(counts.count).toBe(before + 1);
      expect(second.equals(first)).toBe(true);
      expect(first[0]! & 0x30).toBe(0x20); // piggybacked ACK
      expect(first.readUInt16BE(2)).toBe(0x1234);
      expect(first.subarray(first.indexOf(0xff) + 1).toString()).toBe(String(before + 1));
    } finally {
      raw.close();
    }
  });

  it('keeps no timer and no reply objects per answered request (node-coap would, for 202 s)', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const cache = (front.server as unknown as { _lru: { size: number } })._lru;
    const before = timers();
    for (let i = 0; i < 40; i++) await request(alice, endpoint, '/count');
    // The client side (node-coap's Agent) keeps timers of its own for a while; the server's
    // share would be one MAX_RTT timer per reply, 40 here.
    expect(timers() - before).toBeLessThan(40);
    expect(cache.size).toBeGreaterThanOrEqual(40);
  });

  it('sends a large response block-wise (Block2), running the handler once', async () => {
    const sentBefore = endpoint.sent.length;
    const res = await request(alice, endpoint, '/big');
    expect(res.code).toBe('2.05');
    expect(res.payload.equals(big)).toBe(true);
    expect(counts.big).toBe(1);
    expect(endpoint.sent.length - sentBefore).toBe(Math.ceil(big.length / 1024));
    expect(endpoint.sent.every((d) => d.data.length <= 1152)).toBe(true);
  });

  it('answers a malformed datagram with node-coap’s error reply to the sender', async () => {
    const raw = await clientSocket();
    endpoint.accept(raw.address().port, 'SN-RAW-0004');
    try {
      const reply = new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reply within 3 s')), 3000);
        raw.once('message', (msg) => {
          clearTimeout(timer);
          resolve(msg);
        });
      });
      raw.send(Buffer.from([0x00, 0x01]), endpoint.port, LOOPBACK); // version 0: not CoAP
      const msg = await reply;
      expect(msg[1]).toBe(0xa0); // 5.00
    } finally {
      raw.close();
    }
  });

  it('lets middleware refuse a caller before any route, 4.04 included', async () => {
    const blocked = await newClient(endpoint, 'SN-BLOCKED-9');
    try {
      expect((await request(blocked, endpoint, '/whoami')).code).toBe('4.03');
      expect((await request(blocked, endpoint, '/nowhere')).code).toBe('4.03');
      expect((await request(alice, endpoint, '/whoami')).code).toBe('2.05');
    } finally {
      blocked.sock.close();
    }
  });

  it('logs a reply whose session vanished instead of crashing', async () => {
    const raw = await clientSocket();
    endpoint.accept(raw.address().port, 'SN-GONE-0005');
    logged.length = 0;
    try {
      const con = Buffer.concat([Buffer.from([0x40, 0x01, 0x43, 0x21, 0xb6]), Buffer.from('vanish')]);
      raw.send(con, endpoint.port, LOOPBACK);
      for (let i = 0; i < 100 && logged.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(logged[0]?.message).toContain('dropped');
      expect((logged[0]?.error as NodeJS.ErrnoException).code).toBe('ENOTCONN');
    } finally {
      raw.close();
    }
  });

  // node-coap answers a non-final Block1 with 2.31 Continue on a response it made itself, with no
  // 'error' listener: a send error there used to kill the process.
  it('survives a Block1 upload whose session is gone before node-coap answers 2.31 Continue', async () => {
    const raw = await clientSocket();
    const port = raw.address().port;
    endpoint.accept(port, 'SN-VANISH-0006');
    // The session ends right after the datagram is handed over, before the reply goes out.
    endpoint.once('data', () => endpoint.forget(port));
    logged.length = 0;
    try {
      // CON PUT /vanish, message ID 0x4444, token 0x01, Block1 num 0, more, SZX 2 (64 bytes).
      const header = Buffer.from([0x41, 0x03, 0x44, 0x44, 0x01]);
      const uriPath = Buffer.concat([Buffer.from([0xb6]), Buffer.from('vanish')]);
      const block1 = Buffer.from([0xd1, 0x03, 0x0a]); // option 27 = 11 + (13 + 3): delta 13, extended 3; value 0x0a
      const datagram = Buffer.concat([header, uriPath, block1, Buffer.from([0xff]), Buffer.alloc(64, 0x61)]);
      raw.send(datagram, endpoint.port, LOOPBACK);
      for (let i = 0; i < 100 && logged.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(logged[0]?.message).toContain('dropped');
    } finally {
      raw.close();
    }
  });

  it('never binds an fd for the CoAP side', () => {
    const state = Object.getOwnPropertySymbols(front.socket).find((s) => s.description === 'state symbol')!;
    const handle = (front.socket as unknown as Record<symbol, { handle: { fd: number } }>)[state]!.handle;
    expect(handle.fd).toBeLessThan(0);
  });
});

describe('loadRoutes', () => {
  it('fails with one line naming the file when the default export is not a function', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coap-routes-'));
    try {
      const file = join(dir, 'bad.mjs');
      writeFileSync(file, 'export default 42;\n');
      await expect(loadRoutes(file, new Router())).rejects.toThrow(`route file ${file}: default export is not a function`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
