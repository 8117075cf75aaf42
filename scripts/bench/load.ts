/**
 * The load generator: DTLS-PSK client sessions (src/dtls/client.ts) on connected UDP sockets,
 * one socket per session (a DTLS session is an address and port). Every loop here is bounded
 * by a count and a deadline.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DtlsClientSession, type DtlsClientOptions } from '../../src/dtls/client.js';

export const HOST = '127.0.0.1';

/** Fast retransmission: loopback loses datagrams only when a socket buffer overflows. */
const RETRANSMIT = { initialMs: 500, maxMs: 2000, maxRetransmits: 4 };

export interface Target {
  port: number;
  /** The PSK of a serial (this server: derived; libcoap: one static key for everyone). */
  pskFor(serial: string): Buffer;
  /** Uri-Path of the resource to GET. */
  path: string[];
  suites?: readonly number[];
}

export interface Session {
  serial: string;
  session: DtlsClientSession;
  socket: dgram.Socket;
}

/** What runRequests needs of a peer: a DTLS session, or a plain UDP socket (PlainPeer). */
export interface RequestChannel {
  readonly state: string;
  send(data: Buffer): unknown;
  onData?: ((data: Buffer) => void) | undefined;
}

/**
 * A simulated device speaking CoAP without DTLS (coap://): the floor measurements, where the
 * bench asks what the datagram path and the CoAP library cost with no record protection.
 */
export interface PlainPeer {
  session: RequestChannel;
  socket: dgram.Socket;
}

/** `count` UDP sockets, each on its own loopback source address, connected to `port`. */
export async function openPlainPeers(port: number, count: number): Promise<PlainPeer[]> {
  const open = (): Promise<PlainPeer> =>
    new Promise((resolve, reject) => {
      const socket = dgram.createSocket('udp4');
      const session: RequestChannel = { state: 'established', send: (d: Buffer) => socket.send(d), onData: undefined };
      socket.on('message', (m) => session.onData?.(m));
      socket.once('error', reject);
      socket.bind(0, nextSourceAddress(), () => socket.connect(port, HOST, () => resolve({ session, socket })));
    });
  const peers: PlainPeer[] = [];
  for (let i = 0; i < count; i++) peers.push(await open());
  return peers;
}

export function closePlainPeers(peers: PlainPeer[]): void {
  for (const p of peers) p.socket.close();
}

let sourceCounter = 0;

/**
 * A loopback source address for the next simulated device: 127.1.0.1 to 127.1.255.254 in turn
 * (all of 127/8 is loopback on Linux). Devices have addresses of their own; coming from one
 * address, the bench would measure the server's per-source handshake rate limit instead.
 */
export function nextSourceAddress(): string {
  const n = (sourceCounter++ % 65_534) + 1;
  return `127.1.${n >> 8}.${n & 255}`;
}

/** One handshake on a fresh socket; resolves with the session, or undefined on failure/timeout. */
export function handshake(target: Target, serial: string, timeoutMs = 10_000): Promise<Session | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    let done = false;
    const options: DtlsClientOptions = {
      identity: serial,
      psk: target.pskFor(serial),
      cipherSuites: target.suites ?? [0xc0a8],
      retransmit: RETRANSMIT,
    };
    const session = new DtlsClientSession(options, (d) => socket.send(d));
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ok) return resolve({ serial, session, socket });
      session.close(false);
      socket.close();
      resolve(undefined);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('error', () => {});
    socket.on('message', (m) => session.onDatagram(m));
    session.once('established', () => finish(true));
    session.once('close', () => finish(false));
    socket.bind(0, nextSourceAddress(), () => socket.connect(target.port, HOST, () => session.start()));
  });
}

export function closeSession(s: Session, notify = true): void {
  s.session.close(notify);
  try {
    s.socket.close();
  } catch {
    // already closed
  }
}

export interface HandshakeRun {
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  latencies: number[];
  genCpu: number;
}

/**
 * Full handshakes with distinct serials for `seconds`, `concurrency` at a time; each session
 * is closed (close_notify) as soon as it is established, so the server frees it. With
 * `ratePerSecond`, a handshake starts only when the schedule owes one (open loop, at most
 * `concurrency` in flight), so that a server's cost per handshake is read below saturation.
 */
export async function runHandshakes(target: Target, opts: { seconds: number; concurrency: number; prefix: string; max?: number; ratePerSecond?: number }): Promise<HandshakeRun> {
  const start = performance.now();
  const deadline = start + opts.seconds * 1000;
  const max = opts.max ?? 1_000_000;
  const cpu0 = process.cpuUsage();
  let n = 0;
  let ok = 0;
  let failed = 0;
  const latencies: number[] = [];
  const rate = opts.ratePerSecond;
  const owed = () => (rate ? Math.floor(((performance.now() - start) / 1000) * rate) : Infinity);
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && n < max) {
      if (n >= owed()) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      const serial = `${opts.prefix}${n++}`;
      const t0 = performance.now();
      const s = await handshake(target, serial);
      if (s) {
        ok++;
        latencies.push(performance.now() - t0);
        closeSession(s);
      } else failed++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  return { ok, failed, seconds, perSecond: ok / seconds, latencies, genCpu: cpuShare(cpu0, seconds) };
}

/** Establishes `count` sessions, `concurrency` handshakes at a time; bounded by `deadlineMs`. */
export async function establish(target: Target, count: number, prefix: string, concurrency = 32, deadlineMs = 120_000): Promise<Session[]> {
  const out: Session[] = [];
  const deadline = performance.now() + deadlineMs;
  let n = 0;
  const worker = async (): Promise<void> => {
    while (n < count && performance.now() < deadline) {
      const s = await handshake(target, `${prefix}${n++}`);
      if (s) out.push(s);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

export interface RequestRun {
  ok: number;
  lost: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  genCpu: number;
}

/**
 * The last Message ID sent on each channel, kept across runs. RFC 7252 4.4: a Message ID is not
 * reused within EXCHANGE_LIFETIME (247 s). A generator that started every run from the same IDs
 * would have a deduplicating server answer its later runs from the reply cache, without
 * handling them: this server's figures were inflated that way until 2026-11-28.
 */
const lastMessageId = new WeakMap<RequestChannel, number>();

function nextMessageId(channel: RequestChannel): number {
  const id = ((lastMessageId.get(channel) ?? randomInt(0x10000)) + 1) & 0xffff;
  lastMessageId.set(channel, id);
  return id;
}

interface Slot {
  s: { session: RequestChannel };
  request: Buffer;
  mid: number;
  sentAt: number;
  busy: boolean;
}

/**
 * CON GETs over established sessions, closed loop: `concurrency` requests outstanding in total,
 * at most one per session (CoAP's NSTART = 1), sessions taken round-robin. A request not
 * answered within `lostAfterMs` is counted lost and its slot reused.
 * With `ratePerSecond`, requests are instead issued open loop at that rate.
 */
export async function runRequests(
  sessions: { session: RequestChannel }[],
  path: string[],
  opts: { seconds: number; concurrency: number; lostAfterMs?: number; ratePerSecond?: number },
): Promise<RequestRun> {
  const lostAfter = opts.lostAfterMs ?? 1000;
  const latencies: number[] = [];
  let ok = 0;
  let lost = 0;
  let next = 0;
  let stopped = false;
  const slots: Slot[] = sessions.map((s) => ({ s, request: coapGet(0, path), mid: -1, sentAt: 0, busy: false }));
  const start = performance.now();
  const deadline = start + opts.seconds * 1000;
  const cpu0 = process.cpuUsage();

  const issue = (): void => {
    for (let tries = 0; tries < slots.length; tries++) {
      const slot = slots[next++ % slots.length]!;
      if (slot.busy || slot.s.session.state !== 'established') continue;
      slot.mid = nextMessageId(slot.s.session);
      slot.request.writeUInt16BE(slot.mid, 2);
      slot.busy = true;
      slot.sentAt = performance.now();
      slot.s.session.send(slot.request);
      return;
    }
  };
  for (const slot of slots) {
    slot.s.session.onData = (d: Buffer) => {
      if (!slot.busy || d.length < 4 || d.readUInt16BE(2) !== slot.mid) return;
      slot.busy = false;
      ok++;
      latencies.push(performance.now() - slot.sentAt);
      if (!stopped && !opts.ratePerSecond) issue();
    };
  }
  // Lost requests free their slot; checked a few times a second rather than a timer each.
  const reaper = setInterval(() => {
    const now = performance.now();
    for (const slot of slots) {
      if (slot.busy && now - slot.sentAt > lostAfter) {
        slot.busy = false;
        lost++;
        if (!stopped && !opts.ratePerSecond) issue();
      }
    }
  }, 100);
  let pacer: NodeJS.Timeout | undefined;
  if (opts.ratePerSecond) {
    // Open loop: every 10 ms, issue what the rate owes since the start.
    let issued = 0;
    pacer = setInterval(() => {
      const owed = Math.floor(((performance.now() - start) / 1000) * opts.ratePerSecond!);
      for (; issued < owed && issued - ok - lost < slots.length; issued++) issue();
    }, 10);
  } else {
    for (let i = 0; i < Math.min(opts.concurrency, slots.length); i++) issue();
  }
  await new Promise((r) => setTimeout(r, Math.max(0, deadline - performance.now())));
  stopped = true;
  const seconds = (performance.now() - start) / 1000;
  if (pacer) clearInterval(pacer);
  clearInterval(reaper);
  for (const slot of slots) slot.s.session.onData = undefined;
  latencies.sort((a, b) => a - b);
  return {
    ok,
    lost,
    seconds,
    perSecond: ok / seconds,
    p50: pct(latencies, 0.5),
    p99: pct(latencies, 0.99),
    max: latencies[latencies.length - 1] ?? NaN,
    genCpu: cpuShare(cpu0, seconds),
  };
}

export function pct(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Share of one core this process used since `cpu0` over `seconds` of wall time. */
function cpuShare(cpu0: NodeJS.CpuUsage, seconds: number): number {
  const d = process.cpuUsage(cpu0);
  return (d.user + d.system) / 1e6 / seconds;
}

/** A CON GET with a 1-byte token (RFC 7252 section 3); message ID at bytes 2..3. */
export function coapGet(messageId: number, path: string[]): Buffer {
  const parts: number[] = [0x41, 0x01, (messageId >> 8) & 0xff, messageId & 0xff, 0x5a];
  let previous = 0;
  for (const segment of path) {
    const value = Buffer.from(segment, 'utf8');
    if (value.length > 12) throw new Error('coapGet: segments under 13 bytes only');
    parts.push(((11 - previous) << 4) | value.length, ...value);
    previous = 11;
  }
  return Buffer.from(parts);
}
