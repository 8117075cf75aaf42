/**
 * The whole DTLS server, without a socket: mutated datagrams go straight into
 * DtlsServer.onDatagram. Nothing throws out of it, no handler throws inside it
 * (stats.dropped.internal counts those), no state and no key lookup exist before a valid
 * cookie, and when the clock has run out every handshake and every timer is gone.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino, type Logger } from 'pino';
import { ContentType, HandshakeType } from '../../src/dtls/constants.js';
import { DtlsServer } from '../../src/dtls/server.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { pskLookupFromResolver } from '../../src/psk-lookup.js';
import type { KeyResolver, PskCandidate } from '../../src/keys/types.js';
import { PskClientSession, readHelloVerifyCookie } from '../helpers/dtls-raw.js';
import { expectedHexKey, TEST_MASTER_HEX } from '../interop/fixture.js';
import { loadCorpus } from './corpus.js';
import { applyMutation, inputArb, mutationArb } from './mutate.js';

const ADDRESS = '127.0.0.1';
/** A source address per case: the per-address handshake rate limit must not decide the outcome. */
const addr = (n: number) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
const corpus = loadCorpus();

/** The real software derivation, counting lookups. */
class CountingResolver implements KeyResolver {
  calls = 0;
  private readonly inner = new SoftwareResolver({ keys: [{ label: 'fuzz', master: Buffer.from(TEST_MASTER_HEX, 'hex') }], encoding: 'hex', warn: () => {} });
  resolve(identity: Buffer): Promise<PskCandidate[]> {
    this.calls++;
    return this.inner.resolve(identity);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Stands in for the UDP socket so the server's answers (HelloVerifyRequest, flight 4) can be read. */
function captureSocket(server: DtlsServer): Array<{ data: Buffer; port: number }> {
  const sent: Array<{ data: Buffer; port: number }> = [];
  (server as unknown as { socket: unknown }).socket = {
    // Like a real socket: the completion callback comes later (close() waits for it).
    send: (data: Buffer, port: number, _address: string, done?: () => void) => {
      sent.push({ data: Buffer.from(data), port });
      if (typeof done === 'function') queueMicrotask(done);
    },
    close: (cb: () => void) => cb(),
  };
  return sent;
}

/** Collects what the server logs at error level (a handler that threw). */
function errorLogger(errors: string[]): Logger {
  return pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line).err ?? line) });
}

function sweep(server: DtlsServer): void {
  (server as unknown as { sweep(): void }).sweep();
}

/** The key lookup's promise, then the handshake work it defers (HandshakeWork: one turn of the event loop; setImmediate is not faked). */
const flush = () =>
  new Promise<void>((r) => queueMicrotask(r))
    .then(() => Promise.resolve())
    .then(() => new Promise<void>((r) => setImmediate(r)));

beforeEach(() => {
  // Date too: the handshake timeout is judged by Date.now in the sweep.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('DtlsServer.onDatagram under fuzzing', () => {
  it('without a socket, arbitrary and mutated datagrams make no state, no lookup, no timer, no internal error', () => {
    const resolver = new CountingResolver();
    const server = new DtlsServer({ pskLookup: pskLookupFromResolver(resolver) });
    const pool = [...corpus.datagrams, ...corpus['handshake-fragments']];
    fc.assert(
      fc.property(inputArb(pool, 1500), fc.integer({ min: 1, max: 65535 }), (datagram, port) => {
        expect(() => server.onDatagram(datagram, ADDRESS, port)).not.toThrow();
      }),
      { numRuns: 5000 },
    );
    expect(server.stats.datagrams).toBe(5000);
    expect(server.stats.dropped.internal ?? 0).toBe(0);
    // A captured second ClientHello carries a cookie of another server's secret: never valid here.
    expect(server.handshakeCount).toBe(0);
    expect(server.sessionCount).toBe(0);
    expect(resolver.calls).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ClientHellos with forged, replayed or mutated cookies are answered statelessly', () => {
    const resolver = new CountingResolver();
    const server = new DtlsServer({ pskLookup: pskLookupFromResolver(resolver) });
    const sent = captureSocket(server);
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 0, maxLength: 3 }), fc.integer({ min: 1, max: 65535 }), (ops, port) => {
        const s = new PskClientSession();
        sent.length = 0;
        server.onDatagram(s.firstHello(), addr(port), port);
        const cookie = readHelloVerifyCookie(sent[0]?.data ?? Buffer.alloc(0));
        expect(cookie).toBeDefined();
        // The real cookie, mutated; sent from the right port or from the next one.
        const forged = ops.reduce((c, m) => applyMutation(c, m, [cookie!]), cookie!);
        const from = ops.length === 0 ? port : (port % 65535) + 1;
        if (ops.length > 0 && forged.equals(cookie!) && from === port) return;
        server.onDatagram(s.helloWithCookie(forged.length > 255 ? forged.subarray(0, 255) : forged), addr(port), from);
      }),
      { numRuns: 1500 },
    );
    expect(server.stats.dropped.internal ?? 0).toBe(0);
    expect(resolver.calls).toBe(0);
    // Only unmutated cookies from their own port made handshakes; they time out and leave nothing.
    vi.advanceTimersByTime(10 * 60_000);
    sweep(server);
    expect(server.handshakeCount).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('after a valid cookie, mutated flights 5 never throw and every handshake ends', async () => {
    const resolver = new CountingResolver();
    const errors: string[] = [];
    const server = new DtlsServer({ pskLookup: pskLookupFromResolver(resolver), logger: errorLogger(errors) });
    const sent = captureSocket(server);
    let port = 1000;
    let established = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(3), fc.array(mutationArb, { maxLength: 3 })), { minLength: 1, maxLength: 5 }), async (steps) => {
        port++;
        const serial = `SN-fuzz-${port}`;
        const s = new PskClientSession();
        sent.length = 0;
        const from = addr(port);
        server.onDatagram(s.firstHello(), from, port);
        server.onDatagram(s.helloWithCookie(readHelloVerifyCookie(sent[0].data)!), from, port);
        expect(sent.some((d) => s.onFlight4(d.data))).toBe(true);
        // The right flight 5, whose parts the steps pick, mutate and reorder.
        const cke = s.clientKeyExchange(Buffer.from(serial));
        s.deriveKeys(Buffer.from(expectedHexKey(serial), 'ascii'));
        const fin = s.changeCipherSpecAndFinished();
        const parts = [cke, fin, Buffer.concat([cke, fin]), s.applicationData(Buffer.from([0x40, 1, 0, 1]))];
        for (const [which, ops] of steps) {
          const d = ops.reduce((b, m) => applyMutation(b, m, parts), parts[which]);
          expect(() => server.onDatagram(d, from, port)).not.toThrow();
          await flush();
        }
        if (server.peer(from, port)) established++;
      }),
      { numRuns: 400 },
    );
    expect(errors.slice(0, 3)).toEqual([]);
    expect(server.stats.dropped.internal ?? 0).toBe(0);
    expect(established).toBeGreaterThan(0); // unmutated flights did complete
    vi.advanceTimersByTime(10 * 60_000);
    sweep(server);
    expect(server.handshakeCount).toBe(0);
    await server.close();
    expect(server.sessionCount).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a handshake created by a valid cookie is the only state one source gets per port', () => {
    const server = new DtlsServer({ pskLookup: pskLookupFromResolver(new CountingResolver()) });
    const sent = captureSocket(server);
    for (let i = 0; i < 50; i++) {
      const s = new PskClientSession();
      sent.length = 0;
      server.onDatagram(s.firstHello(), ADDRESS, 4000);
      server.onDatagram(s.helloWithCookie(readHelloVerifyCookie(sent[0].data)!), ADDRESS, 4000);
    }
    // Each new cookie-verified hello replaces the previous handshake of that address and port.
    expect(server.handshakeCount).toBe(1);
    expect(sent.filter((d) => d.data[0] === ContentType.handshake && d.data[13] === HandshakeType.server_hello).length).toBeGreaterThan(0);
  });
});
