/**
 * Attacks by a client that passed the cookie exchange: malformed ClientKeyExchange, and
 * malformed or forged Finished. Each fails its own handshake with a fatal alert and leaves no
 * state behind; a raw handshake done right (the control) and a real coap-client still work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertDescription, AlertLevel, ContentType, HandshakeType } from '../../src/dtls/constants.js';
import { CCM_8, RawUdpPeer, fullHandshake, plainAlerts, rawFragment, toFlight4, type PskClientSession } from '../helpers/dtls-raw.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';
import { MEMORY_BOUND, devicePsk, retainedBytes, sleep, startTarget, type AttackTarget } from './fixture.js';

let target: AttackTarget;
let retainedBefore = 0;

beforeAll(async () => {
  target = await startTarget({ label: 'attack-after-cookie' });
  retainedBefore = retainedBytes();
});

afterAll(async () => {
  await target?.close();
});

/** Waits (bounded) until the server holds no handshake. */
async function handshakesDrained(): Promise<number> {
  for (let i = 0; i < 100 && target.server.dtls.handshakeCount > 0; i++) await sleep(20);
  return target.server.dtls.handshakeCount;
}

/**
 * Alerts the server sent. A handshake that fails never got to the server's ChangeCipherSpec,
 * so its alert is plaintext, epoch 0 (RFC 5246 7.1/7.2): what a real client can read. An
 * epoch-1 alert under the server's keys is recorded as `epoch1`, so a test can say it saw none.
 */
async function alertsAfter(peer: RawUdpPeer, s: PskClientSession | undefined, send: () => void): Promise<Array<[number, number] | 'epoch1'>> {
  send();
  const seen: Array<[number, number] | 'epoch1'> = [];
  await peer.recvUntil((dg) => {
    seen.push(...plainAlerts(dg));
    for (const r of s?.open(dg) ?? []) if (r.type === ContentType.alert) seen.push('epoch1');
    return seen.length > 0;
  }, 3000);
  return seen;
}

describe('after a valid cookie', () => {
  it('a correct raw handshake gets /whoami (the control: the attacks below differ from it in one message)', async () => {
    const peer = await RawUdpPeer.open(target.port, '127.0.0.5');
    try {
      const s = await fullHandshake(peer, 'SN-raw-control', devicePsk('SN-raw-control'));
      expect(s).toBeDefined();
      peer.send(s!.applicationData(coapGet(0x1234, ['whoami'])));
      const reply = await peer.recvUntil((d) => s!.open(d).some((r) => r.type === ContentType.application_data));
      const app = s!.open(reply!).find((r) => r.type === ContentType.application_data)!;
      expect(parseReply(app.plaintext)?.payload.toString()).toBe('SN-raw-control');
    } finally {
      await peer.close();
    }
  });

  const serial = 'SN-attacker';
  const id = Buffer.from(serial);
  const cases: Array<[string, Buffer, number]> = [
    ['an empty identity', Buffer.from([0, 0]), AlertDescription.unknown_psk_identity],
    ['an identity over 128 bytes', Buffer.concat([Buffer.from([0, 200]), Buffer.alloc(200, 0x41)]), AlertDescription.unknown_psk_identity],
    ['a length field longer than the body', Buffer.concat([Buffer.from([0xff, 0xff]), id]), AlertDescription.decode_error],
    ['a length field shorter than the body', Buffer.concat([Buffer.from([0, 2]), id]), AlertDescription.decode_error],
    ['a truncated length field', Buffer.from([0x01]), AlertDescription.decode_error],
    ['an empty body', Buffer.alloc(0), AlertDescription.decode_error],
  ];

  it.each(cases)('ClientKeyExchange with %s is refused with a fatal alert, and no key is derived', async (_name, body, alert) => {
    const peer = await RawUdpPeer.open(target.port, '127.0.0.6');
    try {
      const s = await toFlight4(peer);
      expect(s).toBeDefined();
      const calls = target.hsmCalls;
      const alerts = await alertsAfter(peer, undefined, () => peer.send(s!.clientKeyExchange(id, body)));
      expect(alerts).toContainEqual([AlertLevel.fatal, alert]);
      expect(target.hsmCalls).toBe(calls);
      expect(await handshakesDrained()).toBe(0);
    } finally {
      await peer.close();
    }
  });

  it('a message of the wrong type in place of ClientKeyExchange is unexpected_message', async () => {
    const peer = await RawUdpPeer.open(target.port, '127.0.0.6');
    try {
      const s = await toFlight4(peer);
      const rec = Buffer.concat([Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 24]), rawFragment({ msgType: HandshakeType.finished, length: 12, messageSeq: 2, fragmentOffset: 0, body: Buffer.alloc(12) })]);
      const alerts = await alertsAfter(peer, s, () => peer.send(rec));
      expect(alerts).toContainEqual([AlertLevel.fatal, AlertDescription.unexpected_message]);
      expect(await handshakesDrained()).toBe(0);
    } finally {
      await peer.close();
    }
  });

  /**
   * Flight 5 with the right ClientKeyExchange and the Finished replaced by `finish`; `times` > 1
   * retransmits the whole flight as a client does (the same ClientKeyExchange, a new Finished record).
   */
  async function forgedFinished(finish: (s: PskClientSession) => Buffer, psk = devicePsk(serial), times = 1): Promise<Array<[number, number] | 'epoch1'>> {
    const peer = await RawUdpPeer.open(target.port, '127.0.0.7');
    try {
      const s = await toFlight4(peer);
      expect(s).toBeDefined();
      peer.send(s!.clientKeyExchange(id));
      s!.deriveKeys(psk);
      return await alertsAfter(peer, s, () => {
        for (let i = 0; i < times; i++) peer.send(i === 0 ? finish(s!) : Buffer.concat([s!.repeatClientKeyExchange(), finish(s!)]));
      });
    } finally {
      await peer.close();
    }
  }

  it('a Finished with forged verify_data (right keys) is decrypt_error; no session', async () => {
    const alerts = await forgedFinished((s) => {
      const forged = Buffer.from(s.expectedVerifyData());
      forged[0] ^= 0x01;
      return s.changeCipherSpecAndFinished({ finishedBody: forged });
    });
    expect(alerts).toContainEqual([AlertLevel.fatal, AlertDescription.decrypt_error]);
    expect(alerts).not.toContain('epoch1');
    expect(target.server.dtls.peer('127.0.0.7', 0)).toBeUndefined();
    expect(await handshakesDrained()).toBe(0);
  });

  it('a Finished of the wrong length (right keys) is decode_error', async () => {
    const alerts = await forgedFinished((s) => s.changeCipherSpecAndFinished({ finishedBody: Buffer.concat([s.expectedVerifyData(), Buffer.from([0])]) }));
    expect(alerts).toContainEqual([AlertLevel.fatal, AlertDescription.decode_error]);
    expect(alerts).not.toContain('epoch1');
    expect(await handshakesDrained()).toBe(0);
  });

  // Sent twice, as a client with the wrong key retransmits its flight: the first unreadable
  // Finished is dropped (RFC 6347 4.1.2.7), the second transmission's fails the handshake.
  it('a Finished sealed under keys from another PSK (the attacker does not know the key) is bad_record_mac', async () => {
    const alerts = await forgedFinished((s) => s.changeCipherSpecAndFinished(), devicePsk('SN-someone-else'), 2);
    expect(alerts).toContainEqual([AlertLevel.fatal, AlertDescription.bad_record_mac]);
    expect(await handshakesDrained()).toBe(0);
  });

  it('a Finished record that is random bytes in epoch 1 fails only its handshake', async () => {
    const junk = CCM_8.createProtection({ macKey: Buffer.alloc(0), encKey: Buffer.alloc(16, 9), fixedIv: Buffer.alloc(4, 9) }, { encryptThenMac: false });
    const alerts = await forgedFinished((s) => s.changeCipherSpecAndFinished({ sealWith: junk }), undefined, 2);
    expect(alerts.length).toBeGreaterThan(0);
    expect(alerts[0]).toEqual([AlertLevel.fatal, AlertDescription.bad_record_mac]);
    expect(await handshakesDrained()).toBe(0);
  });

  // RFC 6347 4.1.2.7: an epoch-1 record that no candidate key opens is dropped, so whoever can
  // spoof the client's address and port cannot kill its handshake with one datagram.
  it('a forged epoch-1 record from a spoofed source does not kill the honest handshake', async () => {
    const peer = await RawUdpPeer.open(target.port, '127.0.0.8');
    try {
      const s = await toFlight4(peer);
      peer.send(s!.clientKeyExchange(id));
      s!.deriveKeys(devicePsk(serial));
      await sleep(100); // the key lookup
      const junk = CCM_8.createProtection({ macKey: Buffer.alloc(0), encKey: Buffer.alloc(16, 7), fixedIv: Buffer.alloc(4, 7) }, { encryptThenMac: false });
      // The "spoofed" record comes from the victim's own address and port.
      peer.send(s!.sealRecord(ContentType.handshake, Buffer.alloc(24, 1), junk));
      await sleep(50);
      peer.send(s!.changeCipherSpecAndFinished());
      const fin = await peer.recvUntil((d) => s!.open(d).some((r) => r.type === ContentType.handshake), 3000);
      expect(fin).toBeDefined();
    } finally {
      await peer.close();
    }
  });

  it('afterwards a real coap-client still gets its serial, and memory grew less than 64 MiB', async () => {
    const res = await target.whoami('SN-after-cookie');
    expect(res.responseCode, res.stderr).toBe('2.05');
    expect(res.payload).toBe('SN-after-cookie');
    expect(target.server.dtls.stats.dropped.internal ?? 0).toBe(0);
    expect(retainedBytes() - retainedBefore).toBeLessThan(MEMORY_BOUND);
  });
});
