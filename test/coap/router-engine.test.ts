/**
 * The Router on the CoAP engine, driven by node-coap's client (an independent implementation)
 * over the plain-UDP stand-in of the DTLS layer: routes, params, query, identity, built-ins,
 * errors, middleware, Block2, a routes module loaded from a file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRoutesModule } from '../../src/cli/routes-loader.js';
import { Router } from '../../src/coap/router.js';
import { nodeCoapClient, nodeCoapRequest as request, type NodeCoapClient } from '../helpers/coap-client.js';
import { clientSocket, LOOPBACK, UdpEndpoint } from '../helpers/udp-endpoint.js';

describe('Router over the CoAP engine', () => {
  let endpoint: UdpEndpoint;
  let alice: NodeCoapClient;
  let bob: NodeCoapClient;
  const logged: Array<{ message: string; error: unknown }> = [];
  const counts = { count: 0, big: 0 };
  const big = Buffer.from(Buffer.alloc(4000, 0).map((_, i) => i % 251));
  let routeDir: string;

  beforeAll(async () => {
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
      endpoint.end(req.session.port); // the DTLS session ends while the handler runs
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
    await (await loadRoutesModule(file))(router);
    endpoint = await UdpEndpoint.open(router, { logger: { error: (message, error) => logged.push({ message, error }) } });
    alice = await nodeCoapClient(endpoint, 'SN-ALICE-0001');
    bob = await nodeCoapClient(endpoint, 'SN-BOB-0002');
  });

  afterAll(async () => {
    alice.sock.close();
    bob.sock.close();
    await endpoint.close();
    rmSync(routeDir, { recursive: true, force: true });
  });

  it('answers /whoami with the identity of each session, as text/plain', async () => {
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
    expect(JSON.parse(res.payload.toString())).toEqual({ params: { id: 'abc-42' }, unit: 'C', who: 'SN-BOB-0002', key: 'master-2024' });
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

  it('sends a large response block-wise (Block2), one handler run per block', async () => {
    const sentBefore = endpoint.sent.length;
    const before = counts.big;
    const res = await request(alice, endpoint, '/big');
    expect(res.code).toBe('2.05');
    expect(res.payload.equals(big)).toBe(true);
    expect(counts.big - before).toBe(Math.ceil(big.length / 1024));
    expect(endpoint.sent.length - sentBefore).toBe(Math.ceil(big.length / 1024));
    expect(endpoint.sent.every((d) => d.data.length <= 1152)).toBe(true);
  });

  it('lets middleware refuse a caller before any route, 4.04 included', async () => {
    const blocked = await nodeCoapClient(endpoint, 'SN-BLOCKED-9');
    try {
      expect((await request(blocked, endpoint, '/whoami')).code).toBe('4.03');
      expect((await request(blocked, endpoint, '/nowhere')).code).toBe('4.03');
      expect((await request(alice, endpoint, '/whoami')).code).toBe('2.05');
    } finally {
      blocked.sock.close();
    }
  });

  it('sends nothing once the session ended while the handler ran, and does not throw', async () => {
    const raw = await clientSocket();
    endpoint.accept(raw.address().port, 'SN-GONE-0005');
    const got: Buffer[] = [];
    raw.on('message', (m) => got.push(m));
    try {
      const con = Buffer.concat([Buffer.from([0x40, 0x01, 0x43, 0x21, 0xb6]), Buffer.from('vanish')]);
      raw.send(con, endpoint.port, LOOPBACK);
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toEqual([]);
      expect(endpoint.coap.sessions).toBeGreaterThan(0); // alice and bob still there
    } finally {
      raw.close();
    }
  });
});
