/**
 * HandshakeWork: the work a handshake does after its key lookup runs in slices, and the socket
 * is read between slices (issue 17, isolation: requests on established sessions must not wait
 * behind a burst of HSM answers).
 */
import dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { HandshakeWork } from '../../../src/dtls/handshake-work.js';

/** Keeps the event loop busy for `ms` (bounded by the clock). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HandshakeWork', () => {
  it('runs a task at once when the slice is 0', () => {
    const work = new HandshakeWork(0, () => {});
    const ran: number[] = [];
    work.defer(() => ran.push(1));
    expect(ran).toEqual([1]);
  });

  it('runs tasks later, in the order they came, and reports a task that throws without stopping the others', async () => {
    const errors: unknown[] = [];
    const work = new HandshakeWork(1, (e) => errors.push(e));
    const ran: number[] = [];
    work.defer(() => ran.push(1));
    work.defer(() => {
      throw new Error('bug in task 2');
    });
    work.defer(() => ran.push(3));
    expect(ran).toEqual([]);
    expect(work.waiting).toBe(3);
    await settle(20);
    expect(ran).toEqual([1, 3]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['bug in task 2']);
    expect(work.waiting).toBe(0);
  });

  it('reads a datagram that waits in the socket between slices, not after the whole queue', async () => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const events: string[] = [];
    socket.on('message', () => events.push('datagram'));
    try {
      const work = new HandshakeWork(1, () => {});
      for (let i = 1; i <= 5; i++) {
        work.defer(() => {
          // The first task sends the datagram: it reaches the socket while the queue runs.
          if (i === 1) socket.send(Buffer.from('request'), socket.address().port, '127.0.0.1');
          busy(3);
          events.push(`task ${i}`);
        });
      }
      for (let i = 0; i < 100 && events.length < 6; i++) await settle(10);
      expect(events).toHaveLength(6);
      // Each task is longer than the slice: one task per turn, the socket read between them.
      expect(events.indexOf('datagram')).toBeGreaterThan(events.indexOf('task 1'));
      expect(events.indexOf('datagram')).toBeLessThan(events.indexOf('task 5'));
      expect(events.filter((e) => e.startsWith('task'))).toEqual(['task 1', 'task 2', 'task 3', 'task 4', 'task 5']);
    } finally {
      socket.close();
    }
  });
});
