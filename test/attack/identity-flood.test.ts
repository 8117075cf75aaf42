/**
 * An identity flood against a slow HSM: hundreds of cookie-verified handshakes, each naming a
 * serial never seen before, so every one misses the cache and asks the token, which here
 * takes seconds per derivation. The server must bound the derivations waiting (refusing the
 * excess at once, with an alert), keep serving an established session meanwhile, and serve a
 * real coap-client once the flood is over, with memory growth under 64 MiB.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AlertLevel, ContentType } from '../../src/dtls/constants.js';
import { RawUdpPeer, fullHandshake, plainAlerts, toFlight4, type PskClientSession } from '../helpers/dtls-raw.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import { MEMORY_BOUND, devicePsk, retainedBytes, sleep, startTarget, type AttackTarget } from './fixture.js';

const LATENCY_MS = 4000;
const ATTACKERS = 400;
const ADDRESSES = 10; // 40 handshakes per source address: inside any sane per-source burst

let target: AttackTarget;
let retainedBefore = 0;

beforeAll(async () => {
  target = await startTarget({ label: 'attack-identity-flood', latencyMs: LATENCY_MS });
  retainedBefore = retainedBytes();
});

afterAll(async () => {
  await target?.close();
});

it('bounds waiting derivations, refuses the excess at once, keeps sessions served, recovers', { timeout: 60_000 }, async () => {
  const dtls = target.server.dtls;
  const configured = (dtls.config as { maxPendingKeyLookups?: number }).maxPendingKeyLookups;

  // An honest device already in session before the flood.
  const honest = await RawUdpPeer.open(target.port, '127.0.0.30');
  const session = await fullHandshake(honest, 'SN-established', devicePsk('SN-established'), LATENCY_MS + 3000);
  expect(session).toBeDefined();

  const peers: RawUdpPeer[] = [];
  try {
    for (let i = 0; i < ATTACKERS; i++) peers.push(await RawUdpPeer.open(target.port, `127.0.0.${10 + (i % ADDRESSES)}`));
    // Cookie exchange and flight 4 for all, 50 at a time; then every ClientKeyExchange at once.
    const sessions: Array<PskClientSession | undefined> = [];
    for (let i = 0; i < peers.length; i += 50) sessions.push(...(await Promise.all(peers.slice(i, i + 50).map((p) => toFlight4(p)))));
    const admitted = sessions.filter((s) => s !== undefined).length;
    peers.forEach((p, i) => sessions[i] && p.send(sessions[i]!.clientKeyExchange(Buffer.from(`SN-flood-${i}`))));
    await sleep(500);

    // While the token is busy: the established session is answered (its path needs no key).
    honest.send(session!.applicationData(coapGet(0x4242, ['whoami'])));
    const reply = await honest.recvUntil((d) => session!.open(d).some((r) => r.type === ContentType.application_data), LATENCY_MS - 1000);
    expect(reply, 'established session answered during the flood').toBeDefined();
    expect(parseReply(session!.open(reply!).find((r) => r.type === ContentType.application_data)!.plaintext)?.payload.toString()).toBe('SN-established');

    // The excess was refused at once with a fatal alert, not left to time out.
    let refused = 0;
    await Promise.all(peers.map(async (p) => {
      const d = await p.recvUntil((dg) => plainAlerts(dg).some(([level]) => level === AlertLevel.fatal), 300);
      if (d) refused++;
    }));
    if (process.env.ATTACK_DEBUG) console.log({ admitted, refused, maxLookups: target.maxConcurrentLookups, hsmCalls: target.hsmCalls, dropped: dtls.stats.dropped });
    expect(admitted).toBeGreaterThan(0);
    expect(dtls.stats.dropped.internal ?? 0).toBe(0);
    // The derivations that reached the token were bounded by the server, not by the flood.
    expect(configured, 'DtlsServerConfig.maxPendingKeyLookups').toBeDefined();
    expect(target.maxConcurrentLookups).toBeLessThanOrEqual(configured!);
    if (configured! < ATTACKERS) expect(refused).toBeGreaterThan(0);
  } finally {
    await Promise.all(peers.map((p) => p.close()));
    await honest.close();
  }

  // Once the flood's lookups are over (bounded wait), an honest device is served again.
  for (let i = 0; i < 150 && dtls.handshakeCount > 0; i++) await sleep(100);
  const res = await target.whoami('SN-after-identity-flood', 10);
  expect(res.responseCode, res.stderr).toBe('2.05');
  expect(res.payload).toBe('SN-after-identity-flood');
  expect(retainedBytes() - retainedBefore).toBeLessThan(MEMORY_BOUND);
});
