/**
 * `coap-psk serve --workers 2` with Connection IDs (RFC 9146) as a real process tree on a real
 * SoftHSM token: a device establishes a session with a CID on one worker, then changes its
 * source port (NAT rebinding) until the kernel's SO_REUSEPORT hash hands its datagrams to the
 * other worker. That worker passes them to the owner (through the primary), the owner answers
 * through its own socket on the same port, and the device's requests go on being answered with
 * no new handshake. On code without the hand-over the other worker finds no session for the
 * CID and drops the record: the request is never answered.
 *
 * Which worker holds the session is read from the log ('handshake ok' carries the worker id);
 * which one the new port reached, from coap_psk_cid_forwarded_total{worker}.
 *
 * Needs dgram reusePort (Node ≥ 22.12): skipped on older Node; CI runs it on Node 24 (.ci/run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DtlsCoapPeer } from '../helpers/coap-dtls-peer.js';
import { freePortPair, LOOPBACK } from '../helpers/ports.js';
import { sample } from '../helpers/prometheus.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import type { TestToken } from '../helpers/softhsm.js';
import { until } from '../helpers/wait.js';
import { NO_REUSE_PORT, SKIP_REASON } from './needs-reuse-port.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';

/** Source ports tried: each lands on the other worker with probability about 1/2. */
const MAX_REBINDS = 24;

interface LogLine {
  msg: string;
  worker?: number;
  identity?: string;
}

describe.skipIf(NO_REUSE_PORT)(`serve --workers 2, a CID session whose source port changes${SKIP_REASON}`, () => {
  let token: TestToken;
  let server: ServerProcess;
  let metricsPort: number;

  const lines = (): LogLine[] => server.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  const metric = async (name: string, labels?: Record<string, string>) =>
    sample(await (await fetch(`http://${LOOPBACK}:${metricsPort}/metrics`)).text(), name, labels) ?? 0;

  beforeAll(async () => {
    token = await makeToken('cluster-cid');
    metricsPort = await freePortPair();
    server = await startServerProcess({ ...token.env, COAP_PSK_KEY_ENCODING: 'hex' }, [
      '--workers', '2', '--metrics-port', String(metricsPort), '--log-format', 'json',
    ]);
  });
  afterAll(async () => {
    await server?.stop();
    await token?.cleanup();
  });

  it('is served through the other worker: the owner answers on the same server port, no new handshake', async () => {
    const serial = 'SN-cid-workers';
    const psk = Buffer.from(expectedHexKey(serial), 'ascii'); // the server runs the hex encoding
    const peer = await DtlsCoapPeer.connect(server.port, serial, psk, undefined, { connectionId: Buffer.alloc(0) });
    let messageId = 0x2000;
    const whoami = async () => {
      const id = ++messageId;
      peer.send({ messageId: id, token: Buffer.from([id & 0xff]), confirmable: true, code: 'GET', options: [{ name: 'Uri-Path', value: Buffer.from('whoami') }] });
      return (await peer.next((p) => p.messageId === id, 5000)).payload.toString();
    };
    try {
      expect(await whoami()).toBe(serial);
      const handshakes = () => lines().filter((l) => l.msg === 'handshake ok' && l.identity === serial);
      await until(() => handshakes().length === 1, 5_000);
      const owner = handshakes()[0]!.worker!;
      const other = owner === 1 ? 2 : 1;
      const forwardedByOther = () => metric('coap_psk_cid_forwarded_total', { worker: String(other) });
      expect(await forwardedByOther()).toBe(0);

      // Every reply must come from the server's one address and port, whichever socket sent it.
      const replySources = new Set<string>();
      let crossed = false;
      for (let i = 0; i < MAX_REBINDS && !crossed; i++) {
        await peer.rebind();
        peer.socket.on('message', (_m, rinfo) => replySources.add(`${rinfo.address}:${rinfo.port}`));
        expect(await whoami()).toBe(serial);
        crossed = (await forwardedByOther()) > 0;
      }
      expect(crossed, `no new source port reached worker ${other} in ${MAX_REBINDS} tries`).toBe(true);
      // Further requests from that port keep taking the hand-over, and keep being answered.
      const before = await forwardedByOther();
      for (let i = 0; i < 3; i++) expect(await whoami()).toBe(serial);
      expect(await forwardedByOther()).toBeGreaterThan(before);
      expect(await metric('coap_psk_cid_forwarded_total', { worker: String(owner) })).toBe(0);

      expect(replySources).toEqual(new Set([`${LOOPBACK}:${server.port}`]));
      await new Promise((r) => setTimeout(r, 300)); // the log's batching (src/log.ts): 200 ms
      expect(handshakes()).toHaveLength(1);
      const moves = lines().filter((l) => l.msg === 'peer address changed' && l.identity === serial);
      expect(moves.length).toBeGreaterThan(0);
      expect(moves.every((l) => l.worker === owner)).toBe(true);
    } finally {
      await peer.close();
    }
  });
});
