/**
 * The hand-over's cluster-node parts (src/cluster/takeover.ts), both sides in this process on a
 * real Unix socket: the old side's peer table reaches the successor before it binds, and the
 * records another node forwarded meanwhile keep their path back (`via`), whichever side held them:
 * the old one (they reached its cluster port during the drain) or the successor (its own cluster
 * port, before the sessions were imported).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { holdForTakeover, offerTakeover, takeOver } from '../../src/cluster/takeover.js';
import { DtlsServer } from '../../src/dtls/server.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const newServer = () => new DtlsServer({ pskLookup: async () => ({ refused: 'unknown_psk_identity' as const }) });
const record = (byte: number) => Buffer.from([0x19, 0xfe, 0xfd, byte]);

describe('takeover between cluster nodes', () => {
  it('carries the peer table before the bind, and serves held forwarded records with their via', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coap-psk-node-takeover-'));
    dirs.push(dir);
    const path = join(dir, 'takeover.sock');
    const logger = pino({ level: 'silent' });
    const old = newServer();
    let handedOver = false;
    const offer = await offerTakeover(path, {
      dtls: old,
      // A FORWARD from node 3 that reaches the old process's cluster port after ready.
      drain: async () => void old.onDatagram(record(1), '192.0.2.7', 4001, true, 3),
      close: async () => {},
      peers: () => Buffer.from('[{"node":3,"address":"198.51.100.3","port":5685,"ageMs":10}]'),
    }, logger, () => void (handedOver = true));

    const successor = newServer();
    holdForTakeover(successor);
    // One that reached the successor's own cluster port before the sessions were there; one
    // forwarded without a path back (backward off).
    successor.onDatagram(record(2), '192.0.2.8', 4002, true, 5);
    successor.onDatagram(record(3), '192.0.2.9', 4003, true);
    const served: unknown[][] = [];
    let table: string | undefined;
    let tableAtBind: string | undefined;
    let bound = false;
    successor.onDatagram = (...args: unknown[]) => void (bound && served.push(args));
    try {
      await takeOver(path, { dtls: successor, peers: (t) => void (table = t.toString()) }, async () => {
        tableAtBind = table;
        bound = true;
      }, logger, 5000);
    } finally {
      await offer.close();
    }
    expect(handedOver).toBe(true);
    expect(tableAtBind).toBe('[{"node":3,"address":"198.51.100.3","port":5685,"ageMs":10}]');
    expect(served).toEqual([
      [record(2), '192.0.2.8', 4002, true, 5],
      [record(3), '192.0.2.9', 4003, true, undefined],
      [record(1), '192.0.2.7', 4001, true, 3],
    ]);
  });
});
