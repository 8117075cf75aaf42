/**
 * Floods against the real server on 127.0.0.1: 20,000 malformed datagrams (random bytes and
 * mutated real flights), forged-cookie ClientHellos from many source ports, and hostile
 * handshake fragments (oversized, overlapping, inconsistent). After each, a real
 * coap-client-openssl still gets its serial from /whoami, no handler threw, and memory grew
 * less than 64 MiB.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentType, HandshakeType } from '../../src/dtls/constants.js';
import { encodeClientKeyExchangePsk } from '../../src/dtls/handshake/client-key-exchange.js';
import { RawUdpPeer, fullHandshake, plainRecord, rawFragment, readHelloVerifyCookie, toFlight4, PskClientSession } from '../helpers/dtls-raw.js';
import { loadCorpus } from '../fuzz/corpus.js';
import { inputArb } from '../fuzz/mutate.js';
import { MEMORY_BOUND, devicePsk, paced, retainedBytes, sleep, startTarget, type AttackTarget } from './fixture.js';

let target: AttackTarget;
let retainedBefore = 0;

beforeAll(async () => {
  target = await startTarget({ label: 'attack-floods' });
  // Warm up (first handshake loads the token session, the suites) before the baseline.
  const warm = await target.whoami('SN-warmup');
  expect(warm.ok, warm.stderr).toBe(true);
  retainedBefore = retainedBytes();
});

afterAll(async () => {
  await target?.close();
});

async function honestClientStillServed(serial: string): Promise<void> {
  const res = await target.whoami(serial);
  expect(res.responseCode, res.stderr).toBe('2.05');
  expect(res.payload).toBe(serial);
  expect(target.server.dtls.stats.dropped.internal ?? 0).toBe(0);
  expect(retainedBytes() - retainedBefore).toBeLessThan(MEMORY_BOUND);
}

async function openPeers(n: number, address = '127.0.0.1'): Promise<RawUdpPeer[]> {
  const peers: RawUdpPeer[] = [];
  for (let i = 0; i < n; i++) peers.push(await RawUdpPeer.open(target.port, address));
  return peers;
}

async function closeAll(peers: RawUdpPeer[]): Promise<void> {
  await Promise.all(peers.map((p) => p.close()));
}

describe('floods', () => {
  it('20,000 malformed datagrams (random and mutated flights) from 64 ports', async () => {
    const corpus = loadCorpus();
    const pool = [...corpus.datagrams, ...corpus['handshake-fragments'].map((f) => plainRecord(ContentType.handshake, 0, f))];
    const datagrams = fc.sample(inputArb(pool, 1400), { numRuns: 20_000, seed: 0x5eed });
    const peers = await openPeers(64, '127.0.0.2');
    const stats = target.server.dtls.stats;
    const before = stats.datagrams;
    const hsmBefore = target.hsmCalls;
    try {
      await paced(datagrams.length, 100, (i) => peers[i % peers.length].send(datagrams[i]));
      for (let i = 0; i < 250 && stats.datagrams - before < datagrams.length; i++) await sleep(20);
    } finally {
      await closeAll(peers);
    }
    // Loopback with 4 MiB socket buffers and paced sending: most datagrams reach the server even
    // on a loaded machine (the kernel drops the rest when the process is starved of CPU), so the
    // checks below are about a real flood, whatever share of it got through.
    expect(stats.datagrams - before).toBeGreaterThanOrEqual(15_000);
    expect(target.hsmCalls).toBe(hsmBefore); // no key lookup without a cookie
    expect(target.server.dtls.handshakeCount).toBe(0);
    await honestClientStillServed('SN-after-malformed');
  });

  it('forged-cookie ClientHellos from 200 source ports make no handshake and no HSM call', async () => {
    const peers = await openPeers(200);
    const dtls = target.server.dtls;
    const badBefore = dtls.stats.dropped.bad_cookie_hello ?? 0;
    const hsmBefore = target.hsmCalls;
    // A real cookie, issued to one port, replayed from all the others; and random cookies.
    const victim = peers[0];
    const s = new PskClientSession();
    victim.send(s.firstHello());
    const real = readHelloVerifyCookie((await victim.recvUntil((d) => readHelloVerifyCookie(d) !== undefined))!)!;
    let replies = 0;
    let replyBytes = 0;
    let sentBytes = 0;
    for (const p of peers) p.socket.on('message', (m) => { replies++; replyBytes += m.length; });
    try {
      await paced(5000, 100, (i) => {
        const p = peers[1 + (i % (peers.length - 1))];
        const cookie = i % 2 === 0 ? real : Buffer.from(Array.from({ length: 16 }, (_, k) => (i * 31 + k * 7) & 0xff));
        const d = s.helloWithCookie(cookie);
        sentBytes += d.length;
        p.send(d);
      });
      // Let the server drain its socket buffer (bounded: 5 s), the machine may be busy.
      for (let i = 0; i < 250 && (dtls.stats.dropped.bad_cookie_hello ?? 0) - badBefore < 5000; i++) await sleep(20);
    } finally {
      await closeAll(peers);
    }
    expect(dtls.handshakeCount).toBe(0);
    expect(target.hsmCalls).toBe(hsmBefore);
    expect((dtls.stats.dropped.bad_cookie_hello ?? 0) - badBefore).toBeGreaterThanOrEqual(4500);
    // Answered with HelloVerifyRequests only, each smaller than the hello: no amplification.
    expect(replies).toBeGreaterThan(0);
    expect(replyBytes).toBeLessThan(sentBytes);
    // The flood came from the honest client's own address: it must not have used up its rate.
    await honestClientStillServed('SN-after-cookie-flood');
  });

  it('oversized, overlapping and inconsistent handshake fragments after a valid cookie', async () => {
    const dtls = target.server.dtls;
    const peers = await openPeers(20, '127.0.0.3');
    const honest: PskClientSession[] = [];
    try {
      for (const [n, peer] of peers.entries()) {
        const s = await toFlight4(peer);
        expect(s).toBeDefined();
        let rseq = 100;
        const send = (frag: Buffer) => peer.send(plainRecord(ContentType.handshake, rseq++, frag));
        const serial = `SN-frag-${n}`;
        const cke = encodeClientKeyExchangePsk(Buffer.from(serial));
        // Every message_seq past the next two announced just under the reassembly bound.
        for (let seq = 4; seq < 12; seq++) send(rawFragment({ msgType: 20, length: 16_000, messageSeq: seq, fragmentOffset: 0, body: Buffer.alloc(1100, seq) }));
        // A message announced at 16 MiB, in pieces: never allocated.
        for (let off = 0; off < 20; off++) send(rawFragment({ msgType: 16, length: 0xffffff, messageSeq: 2, fragmentOffset: off * 1000, body: Buffer.alloc(1000, off) }));
        if (n % 2 === 0) {
          // The real ClientKeyExchange in overlapping, repeated, reordered pieces, then the rest
          // of flight 5: despite the junk around it, this handshake completes.
          s!.clientKeyExchange(Buffer.from(serial)); // the transcript; the pieces go instead of the record
          for (const [off, len] of [[3, 9], [0, 6], [2, 2], [10, cke.length - 10], [0, 4]] as const) {
            send(rawFragment({ msgType: HandshakeType.client_key_exchange, length: cke.length, messageSeq: 2, fragmentOffset: off, body: cke.subarray(off, off + len) }));
          }
          s!.deriveKeys(devicePsk(serial));
          await sleep(50);
          peer.send(s!.changeCipherSpecAndFinished());
          honest.push(s!);
        } else {
          // A fragment reaching past its message, then a record of a hundred tiny fragments.
          send(rawFragment({ msgType: 16, length: 10, messageSeq: 2, fragmentOffset: 8, body: Buffer.alloc(5) }));
          send(Buffer.concat(Array.from({ length: 100 }, (_, k) => rawFragment({ msgType: 16, length: 100, messageSeq: 2, fragmentOffset: k, body: Buffer.alloc(1) }))));
        }
      }
      for (let i = 0; i < 100 && dtls.handshakeCount > 0; i++) await sleep(20);
      expect(dtls.stats.dropped.internal ?? 0).toBe(0);
      expect(dtls.handshakeCount).toBe(0); // every hostile one failed, every honest one finished
      for (const [n, peer] of peers.entries()) {
        expect(dtls.peer('127.0.0.3', peer.port)?.identity, `peer ${n}`).toBe(n % 2 === 0 ? `SN-frag-${n}` : undefined);
      }
    } finally {
      await closeAll(peers);
    }
    await honestClientStillServed('SN-after-fragments');
  });
});
