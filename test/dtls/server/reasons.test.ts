/**
 * Issue 11 defect 8: a failed handshake names its reason from the fixed set (src/dtls/reasons.ts),
 * as the 'handshake' event, the log line and the metric label: a deny-list hit, an identity the
 * pattern refuses and a wrong key are three different codes, not one "unknown PSK identity".
 * The real composition (createServer) in process, this project's DTLS client on loopback.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDtls } from '../../../src/dtls/client.js';
import type { HandshakeEvent } from '../../../src/dtls/server.js';
import { HANDSHAKE_FAILURES } from '../../../src/dtls/reasons.js';
import { deriveSoftware } from '../../../src/keys/derive.js';
import { SoftwareResolver } from '../../../src/keys/software.js';
import { createServer, type CoapPskServer } from '../../../src/server.js';
import { parseExposition, sample } from '../../helpers/prometheus.js';
import { until } from '../../helpers/wait.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
let dir: string;
let server: CoapPskServer;
let port: number;
const events: HandshakeEvent[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'reasons-'));
  await writeFile(join(dir, 'deny'), 'SN-denied\n');
  server = await createServer({
    keys: new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} }),
    denyList: join(dir, 'deny'),
    identity: { pattern: '^(?<tenant>[^/]+)/(?<serial>.+)$' },
    metrics: { processMetrics: false },
  });
  server.on('handshake', (e) => events.push(e));
  ({ port } = await server.listen(0, '127.0.0.1'));
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function failureOf(identity: string, serialForKey: string): Promise<string | undefined> {
  const before = events.length;
  await connectDtls({ host: '127.0.0.1', port, identity, psk: deriveSoftware(MASTER, Buffer.from(serialForKey)), timeoutMs: 4000 }).then(
    (c) => c.close(),
    () => {},
  );
  await until(() => events.length > before, 4000);
  return events.at(-1)?.reason;
}

describe('handshake failure reasons', () => {
  it('tell a deny-list hit, a pattern mismatch and a wrong key apart, in events and metric labels', async () => {
    expect(await failureOf('acme/SN-denied', 'SN-denied')).toBe('identity_denied');
    expect(await failureOf('no-tenant', 'no-tenant')).toBe('identity_pattern_mismatch');
    expect(await failureOf('acme/SN-1', 'SN-2')).toBe('finished_unreadable');
    const text = await server.metrics.registry.metrics();
    for (const r of ['identity_denied', 'identity_pattern_mismatch', 'finished_unreadable']) {
      expect(sample(text, 'coap_psk_handshake_failures_total', { reason: r })).toBe(1);
    }
    // Every label is from the fixed set.
    for (const s of parseExposition(text).filter((s) => s.name === 'coap_psk_handshake_failures_total')) expect(HANDSHAKE_FAILURES).toContain(s.labels.reason);
  });
});
