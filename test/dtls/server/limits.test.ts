/**
 * The bounds that keep the HSM and the server's memory safe, on the real server (in process,
 * on loopback) with this project's DTLS client: a resolver wrapper adds latency or hangs,
 * around a real software derivation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AlertDescription } from '../../../src/dtls/constants.js';
import { connectDtls, DtlsClientError } from '../../../src/dtls/client.js';
import { DtlsServer, type DtlsServerOptions } from '../../../src/dtls/server.js';
import type { DtlsSession } from '../../../src/dtls/session.js';
import { SourceRateLimiter, sourceKey } from '../../../src/dtls/rate-limit.js';
import { deriveSoftware } from '../../../src/keys/derive.js';
import { SoftwareResolver } from '../../../src/keys/software.js';
import { until } from '../../helpers/wait.js';
import type { KeyResolver } from '../../../src/keys/types.js';
import { pskLookupFromResolver } from '../../../src/psk-lookup.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
const real = (): KeyResolver => new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} });

const servers: DtlsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(options: Partial<DtlsServerOptions> & { resolver: KeyResolver }): Promise<{ server: DtlsServer; port: number }> {
  const { resolver, ...rest } = options;
  const server = new DtlsServer({ retransmit: { initialMs: 200, maxMs: 400, maxRetransmits: 3 }, ...rest, pskLookup: pskLookupFromResolver(resolver) });
  servers.push(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

function connect(port: number, serial: string, patient = false) {
  return connectDtls({
    host: '127.0.0.1',
    port,
    identity: serial,
    psk: deriveSoftware(MASTER, Buffer.from(serial)),
    timeoutMs: 8000,
    // A patient client keeps retransmitting flight 5 while its lookup is held back.
    retransmit: patient ? { initialMs: 500, maxMs: 1000, maxRetransmits: 10 } : { initialMs: 200, maxMs: 400, maxRetransmits: 3 },
  });
}

/** A resolver whose lookups wait until the gate opens, to hold the HSM queue full. */
function gated(inner: KeyResolver) {
  const waiting: Array<() => void> = [];
  let open = false;
  const resolver: KeyResolver = {
    resolve: async (id) => {
      if (!open) await new Promise<void>((r) => waiting.push(r));
      return inner.resolve(id);
    },
    close: () => inner.close(),
  };
  const release = () => {
    open = true;
    waiting.splice(0).forEach((r) => r());
  };
  return { resolver, release };
}


describe('key lookup queue', () => {
  it('refuses a new handshake with an alert when the HSM queue is full, and serves again once it drains', async () => {
    const gate = gated(real());
    const { server, port } = await start({ resolver: gate.resolver, maxPendingKeyLookups: 1 });
    const first = connect(port, 'SN-first', true);
    await until(() => server.pendingKeyLookups === 1);

    const refused = await connect(port, 'SN-second').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DtlsClientError);
    expect((refused as DtlsClientError).alert).toBe(AlertDescription.internal_error);
    expect(server.stats.dropped.key_lookup_queue_full).toBe(1);

    gate.release();
    const a = await first;
    expect(a.session.state).toBe('established');
    await a.close();
    const again = await connect(port, 'SN-second');
    expect(again.session.state).toBe('established');
    await again.close();
  });

  it('fails only the handshake whose lookup hangs, and frees its place in the queue', async () => {
    const hang: KeyResolver = { resolve: () => new Promise(() => {}), close: async () => {} };
    const inner = real();
    const resolver: KeyResolver = { resolve: (id) => (id.toString() === 'SN-hang' ? hang.resolve(id) : inner.resolve(id)), close: () => inner.close() };
    const { server, port } = await start({ resolver, keyLookupTimeoutMs: 300, maxPendingKeyLookups: 1 });
    const events: Array<{ identity?: string; result: string; reason?: string }> = [];
    server.on('handshake', (e) => events.push(e));

    const hung = await connect(port, 'SN-hang').catch((e: unknown) => e);
    expect((hung as DtlsClientError).alert).toBe(AlertDescription.internal_error);
    expect(events.at(-1)?.reason).toBe('key_lookup_timeout');
    expect(server.pendingKeyLookups).toBe(0);

    const fine = await connect(port, 'SN-fine');
    expect(fine.session.state).toBe('established');
    await fine.close();
  });

  it('fails only the handshake whose lookup throws', async () => {
    const inner = real();
    const resolver: KeyResolver = {
      resolve: (id) => {
        if (id.toString() === 'SN-boom') throw new Error('CKR_DEVICE_ERROR');
        return inner.resolve(id);
      },
      close: () => inner.close(),
    };
    const { server, port } = await start({ resolver });
    const boom = await connect(port, 'SN-boom').catch((e: unknown) => e);
    expect((boom as DtlsClientError).alert).toBe(AlertDescription.internal_error);
    expect(server.stats.dropped.internal ?? 0).toBe(0);
    const fine = await connect(port, 'SN-fine');
    await fine.close();
  });
});

describe('per-source rate limit', () => {
  it('lets a burst through, then refuses until tokens refill', () => {
    let now = 0;
    const limiter = new SourceRateLimiter(2, 3, 10, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take('10.0.0.1'))).toEqual([true, true, true, false]);
    expect(limiter.take('10.0.0.2')).toBe(true); // another address has its own bucket
    now = 500; // half a second at 2/s: one token
    expect(limiter.take('10.0.0.1')).toBe(true);
    expect(limiter.take('10.0.0.1')).toBe(false);
    expect(new SourceRateLimiter(0, 0).take('x')).toBe(true); // 0 turns it off
  });

  it('keys IPv6 sources by their /64 and IPv4-mapped ones as IPv4 (issue 11 defect 7)', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('::1:2:3:4:5:1.2.3.4')).toBe('0:1:2:3::/64');
    expect(sourceKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(sourceKey('10.0.0.1')).toBe('10.0.0.1');
    const limiter = new SourceRateLimiter(1, 2, 100, () => 0);
    expect(['2001:db8::1', '2001:db8::2', '2001:db8::3'].map((a) => limiter.take(a))).toEqual([true, true, false]);
  });

  it('at its bound forgets only the bucket unused the longest, not every source (issue 11 defect 7)', () => {
    const limiter = new SourceRateLimiter(1, 1, 3, () => 0);
    expect(limiter.take('10.0.0.1')).toBe(true);
    expect(limiter.take('10.0.0.2')).toBe(true);
    expect(limiter.take('10.0.0.3')).toBe(true);
    expect(limiter.take('10.0.0.2')).toBe(false); // 10.0.0.2 is now the most recently used
    expect(limiter.take('10.0.0.4')).toBe(true); // evicts 10.0.0.1 only
    expect(limiter.size).toBe(3);
    expect(limiter.take('10.0.0.2')).toBe(false);
    expect(limiter.take('10.0.0.3')).toBe(false);
  });

  it('drops handshakes past the rate of one address on the real server', async () => {
    const { server, port } = await start({ resolver: real(), handshakeRatePerSource: 0.001, handshakeBurstPerSource: 2 });
    for (const serial of ['SN-1', 'SN-2']) await (await connect(port, serial)).close();
    const third = await connectDtls({ host: '127.0.0.1', port, identity: 'SN-3', psk: deriveSoftware(MASTER, Buffer.from('SN-3')), timeoutMs: 800, retransmit: { initialMs: 200, maxMs: 200, maxRetransmits: 2 } }).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(DtlsClientError);
    expect(server.stats.dropped.rate_limited).toBeGreaterThan(0);
  });
});

describe('graceful stop', () => {
  it('drops new ClientHellos after stopAccepting, while an established session still talks', async () => {
    const { server, port } = await start({ resolver: real() });
    const got: Buffer[] = [];
    server.on('session-data', (session: DtlsSession, data: Buffer) => session.send(Buffer.concat([Buffer.from('echo:'), data])));
    const c = await connect(port, 'SN-live');
    c.session.on('data', (d: Buffer) => got.push(d));
    server.stopAccepting();
    const late = await connectDtls({ host: '127.0.0.1', port, identity: 'SN-late', psk: deriveSoftware(MASTER, Buffer.from('SN-late')), timeoutMs: 600, retransmit: { initialMs: 200, maxMs: 200, maxRetransmits: 1 } }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(DtlsClientError);
    c.send(Buffer.from('ping'));
    await until(() => got.length > 0);
    expect(got[0].toString()).toBe('echo:ping');
    await c.close();
  });
});
