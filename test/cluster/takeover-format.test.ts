/**
 * A successor of this version taking over from a server of the previous one, which knows the
 * session state's format 1 only (docs/graceful-restart.md): that server closes the channel on
 * a hello of format 2 (what its code did with any version but 1), so the successor asks again
 * in format 1 and takes the sessions over without their CoAP state. The old server here is a
 * Unix socket server in the test that speaks the channel as the previous version did: frames,
 * X25519 + HKDF + AES-256-GCM with `coap-psk takeover v1` in the additional data.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { takeOver } from '../../src/cluster/takeover.js';
import { encodeFrame, FrameType, readFrames } from '../../src/cluster/takeover-channel.js';
import { ephemeralKey, seal, sealingKey } from '../../src/cluster/takeover-seal.js';
import { DtlsServer } from '../../src/dtls/server.js';
import { encodeSessions } from '../../src/dtls/session-export.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The previous version's side of the channel: format 1 or nothing; the hello versions it saw. */
async function formatOneServer(path: string): Promise<{ hellos: number[]; close(): void }> {
  const hellos: number[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    readFrames(socket, (f) => {
      if (f.type === FrameType.ready) return void socket.end(encodeFrame(FrameType.done, Buffer.alloc(0)));
      if (f.type !== FrameType.hello) return void socket.destroy();
      hellos.push(f.payload[0]!);
      if (f.payload[0] !== 1) return void socket.destroy();
      const own = ephemeralKey();
      const id = randomBytes(16);
      const theirs = f.payload.subarray(1);
      const key = sealingKey(own, theirs, Buffer.concat([id, own.publicKey, theirs]))!;
      const sealed = seal(key, encodeSessions([], 1), Buffer.concat([Buffer.from('coap-psk takeover v1'), id, own.publicKey, theirs]));
      socket.write(encodeFrame(FrameType.state, Buffer.concat([id, own.publicKey, sealed])));
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { hellos, close: () => server.close() };
}

describe('takeover from a server that knows format 1 only', () => {
  it('asks in format 2, then again in format 1, and says that the CoAP state is not carried', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coap-psk-format-'));
    dirs.push(dir);
    const path = join(dir, 'takeover.sock');
    const old = await formatOneServer(path);
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) });
    const dtls = new DtlsServer({ pskLookup: async () => ({ refused: 'unknown_psk_identity' as const }) });
    let bound = false;
    try {
      const sessions = await takeOver(path, { dtls }, async () => void (bound = true), logger, 5000);
      expect(sessions).toBe(0);
    } finally {
      old.close();
    }
    expect(old.hellos).toEqual([2, 1]);
    expect(bound).toBe(true);
    expect(lines).toEqual(['takeover: the running server speaks format 1 only: DTLS sessions go on, their CoAP state (Observe relations) does not']);
  });
});
