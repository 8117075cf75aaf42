/**
 * Graceful restart (docs/graceful-restart.md), single process: the running server (old)
 * listens on a local channel (takeover-channel.ts); `coap-psk serve --takeover` (new) connects,
 * receives the established DTLS sessions, each with the layer above's state (the CoAP state,
 * src/coap/handover.ts), sealed under a key the two agree on (takeover-seal.ts), imports them,
 * binds the same UDP port (SO_REUSEPORT) and says ready; the old one forwards the datagrams it
 * held meanwhile, lets go of its socket and exits.
 *
 *   new                                   old
 *   hello(format, pub_new)         -->
 *                                         hold datagrams; export sessions (write seq + GAP)
 *                                  <--    state(id, pub_old, sealed sessions), peers
 *   import; bind udp (reusePort)
 *   ready                          -->
 *   resume Observe relations              drain handlers; drop sessions silently; close sockets
 *                                  <--    datagram* / forwarded* (held ones), done
 *   serve; bind metrics                   exit 0
 *
 * On a cluster node (docs/cluster.md) the new process binds the cluster port beside the old one
 * (SO_REUSEPORT) before it says hello, and holds what its link receives until the sessions are
 * imported; `peers` carries the old link's peer table, so that it forwards and backwards at once.
 *
 * A takeover that fails before `ready` (the new process dies, says nothing in time, or sends
 * nonsense) leaves the old one serving: it serves the held datagrams, and skips GAP + 2^20
 * write sequence numbers of every session, so that no record the new process may have sent
 * is ever repeated with the same sequence number under the same keys (RFC 6347 4.1.2.1: with
 * AEAD suites that is the nonce).
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { CURRENT_FORMAT, exportServerSessions, importServerSessions, type AppStateHooks, type ExportFormat } from '../dtls/session-export.js';
import type { DtlsSession } from '../dtls/session.js';
import type { DtlsServer } from '../dtls/server.js';
import type { Logger } from '../log.js';
import { UserError } from '../errors.js';
import { datagramFrame, decodeDatagramFrame, encodeFrame, FrameType, readFrames, type Frame } from './takeover-channel.js';
import { ephemeralKey, open, seal, sealingKey } from './takeover-seal.js';

const ID_LENGTH = 16;
const PUBLIC_KEY_LENGTH = 32;
/**
 * Write sequence numbers the exported sessions skip: records the old process still sends
 * after the export (a handler's late response during the drain) use the numbers below it.
 */
export const WRITE_SEQ_GAP = 2 ** 16;
/** Skipped again after a failed takeover, past whatever the new process may have sent. */
export const FAILED_TAKEOVER_SKIP = 2 ** 20;
/** Datagrams kept during a hand-over, at most (the rest are dropped; the devices retransmit). */
const MAX_HELD = 10_000;
const MAX_HELD_BYTES = 16 * 1024 * 1024;

export interface TakeoverTimeouts {
  /** How long the old process waits for `ready` once it has sent the state. */
  readyMs: number;
  /** Bound of the handlers' drain before the old process lets go. */
  drainMs: number;
}

export const DEFAULT_TAKEOVER_TIMEOUTS: TakeoverTimeouts = { readyMs: 10_000, drainMs: 2_000 };

/** What the old side needs of the server it runs in. */
export interface TakeoverSource {
  readonly dtls: DtlsServer;
  /** Waits (bounded) for the requests already received; their responses may still go out. */
  drain(ms: number): Promise<void>;
  /** Everything but the sessions: metrics port, key resolver, timers, a cluster node's port. */
  close(): Promise<void>;
  /** A cluster node's peer table (opaque here), sent beside the sessions. */
  peers?(): Buffer;
  /** The layer above's state per session (format 2), and what it does after a failed hand-over. */
  readonly app?: {
    export(session: DtlsSession): Buffer | undefined;
    failed(): void;
  };
}

/** The hello's version is the session state's format (session-export.ts): the successor asks for one. */
function additionalData(format: ExportFormat, id: Buffer, oldPublic: Buffer, newPublic: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`coap-psk takeover v${format}`, 'utf8'), id, oldPublic, newPublic]);
}

/**
 * Old side: listens on `path` and hands the sessions over to the first process that asks.
 * `onHandedOver` runs once the old server let go of everything (the caller exits).
 */
export async function offerTakeover(
  path: string,
  source: TakeoverSource,
  logger: Logger,
  onHandedOver: () => void,
  timeouts: TakeoverTimeouts = DEFAULT_TAKEOVER_TIMEOUTS,
): Promise<{ close(): Promise<void> }> {
  let busy = false;
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    if (busy) return void socket.destroy();
    busy = true;
    // The channel's path goes before `done`: the successor listens on it next. close() stops
    // listening (and removes the path) at once; its callback would wait for this connection.
    const stopListening = (): void => {
      server.close();
    };
    handOver(socket, source, logger, timeouts, stopListening).then(
      (handed) => {
        if (handed) onHandedOver();
        else busy = false;
      },
      (err: unknown) => {
        busy = false;
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'takeover failed; still serving');
      },
    );
  });
  await listenUnix(server, path);
  return {
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** True when the sessions went to the new process; false when the takeover failed (still serving). */
async function handOver(socket: net.Socket, source: TakeoverSource, logger: Logger, timeouts: TakeoverTimeouts, stopListening: () => void): Promise<boolean> {
  const frames = frameQueue(socket);
  const hello = await frames.next(timeouts.readyMs);
  const format = hello?.payload[0];
  if (!hello || hello.type !== FrameType.hello || hello.payload.length !== 1 + PUBLIC_KEY_LENGTH || (format !== 1 && format !== 2)) {
    // A newer successor that asked for a format unknown here asks again in an older one.
    socket.destroy();
    logger.warn({ format }, 'takeover: a connection that did not say hello in a format known here; ignored');
    return false;
  }
  const newPublic = Buffer.from(hello.payload.subarray(1));
  const own = ephemeralKey();
  const id = randomBytes(ID_LENGTH);
  const key = sealingKey(own, newPublic, Buffer.concat([id, own.publicKey, newPublic]));
  if (!key) {
    socket.destroy();
    return false;
  }
  const dtls = source.dtls;
  dtls.hold(MAX_HELD, MAX_HELD_BYTES);
  const { bytes, count } = exportServerSessions(dtls, WRITE_SEQ_GAP, format, source.app);
  const sealed = seal(key, bytes, additionalData(format, id, own.publicKey, newPublic));
  bytes.fill(0);
  key.fill(0);
  logger.info({ sessions: count, format }, 'takeover: sessions sealed and sent to the new process');
  socket.write(encodeFrame(FrameType.state, Buffer.concat([id, own.publicKey, sealed])));
  socket.write(encodeFrame(FrameType.peers, source.peers?.() ?? Buffer.alloc(0)));
  const ready = await frames.next(timeouts.readyMs);
  if (!ready || ready.type !== FrameType.ready) {
    // The new process died, hung or misbehaved: it may have bound the port and sent records.
    socket.destroy();
    for (const conn of dtls.establishedSessions()) conn.skipWriteSequence(WRITE_SEQ_GAP + FAILED_TAKEOVER_SKIP);
    try {
      source.app?.failed();
    } catch (e) {
      // Serving goes on below whatever failed here: the held datagrams must not stay held.
      logger.error({ err: e instanceof Error ? e.message : String(e) }, 'takeover: after the failed hand-over');
    }
    for (const d of dtls.takeHeld()) dtls.onDatagram(d.msg, d.address, d.port, d.forwarded, d.via);
    logger.error({ sessions: count, why: ready ? `frame ${ready.type}` : 'no ready in time or channel closed' }, 'takeover failed; still serving');
    return false;
  }
  // From here the sessions are the new process's. Requests already received are answered
  // (their records use the sequence numbers below the gap), then the sockets go; what another
  // node forwarded here until then is held too, and passed on with its path back.
  stopListening();
  await source.drain(timeouts.drainMs);
  await dtls.detach();
  await source.close();
  for (const d of dtls.takeHeld()) socket.write(datagramFrame(d));
  await new Promise<void>((resolve) => socket.end(encodeFrame(FrameType.done, Buffer.alloc(0)), () => resolve()));
  logger.info({ sessions: count }, 'takeover: handed over; exiting');
  return true;
}

/** What the new side imports into: the DTLS server, and the layer above's state (CoAP, handover.ts). */
export interface TakeoverTarget {
  readonly dtls: DtlsServer;
  readonly app?: AppStateHooks & {
    /** Runs once `ready` is sent: the relations restored go on (their handlers run again). */
    resume?(): number;
  };
  /** A cluster node: the old link's peer table, entered before the port is bound. */
  peers?(table: Buffer): void;
}

/**
 * A cluster node's successor holds what reaches its cluster port before the sessions are here;
 * takeOver serves it once they are imported and the port is bound.
 */
export function holdForTakeover(dtls: DtlsServer): void {
  dtls.hold(MAX_HELD, MAX_HELD_BYTES);
}

/**
 * New side: takes the sessions of the server listening on `path` into `target`. `bind` binds
 * the UDP port (with reusePort) once they are imported; the returned promise resolves when the
 * old process has let go (or its channel closed after ready), with the number of sessions.
 * A server of the previous version (format 1 only) closes the channel on a format-2 hello:
 * it is asked again in format 1, whose sessions carry no CoAP state.
 */
export async function takeOver(path: string, target: TakeoverTarget, bind: () => Promise<void>, logger: Logger, timeoutMs = 10_000): Promise<number> {
  let asked = await askForState(path, CURRENT_FORMAT, timeoutMs);
  // (A server busy with another takeover closes the channel too: then format 1 is refused as well.)
  if (asked === 'refused') asked = await askForState(path, 1, timeoutMs);
  if (asked === 'refused') throw new UserError('takeover: the running server sent no session state');
  if (asked.format === 1) logger.warn({ format: 1 }, 'takeover: the running server speaks format 1 only: DTLS sessions go on, their CoAP state (Observe relations) does not');
  const { socket, frames, bytes } = asked;
  try {
    const imported = importServerSessions(target.dtls, bytes, target.app);
    bytes.fill(0);
    if (imported === undefined) throw new UserError('takeover: the session state is malformed');
    if (target.peers) {
      // Sent with the state by a server of this version (older ones offer no takeover on a cluster node).
      const peers = await frames.next(timeoutMs);
      if (peers?.type !== FrameType.peers) throw new UserError('takeover: the running server sent no peer table');
      target.peers(peers.payload);
    }
    await bind();
    socket.write(encodeFrame(FrameType.ready, Buffer.alloc(0)));
    for (const d of target.dtls.takeHeld()) target.dtls.onDatagram(d.msg, d.address, d.port, d.forwarded, d.via);
    const observing = target.app?.resume?.() ?? 0;
    logger.info({ sessions: imported, observeRelations: observing }, 'takeover: sessions imported, serving');
    // The datagrams the old process held, until it is done (bounded: it exits after its drain).
    for (;;) {
      const f = await frames.next(timeoutMs);
      if (!f) {
        // Serving goes on; only datagrams the old process held may be lost.
        logger.warn('takeover: the old process did not say done (timeout or channel closed)');
        break;
      }
      if (f.type === FrameType.done) break;
      const d = decodeDatagramFrame(f);
      if (d) target.dtls.onDatagram(d.msg, d.address, d.port, d.forwarded, d.via);
    }
    return imported;
  } finally {
    socket.destroy();
  }
}

/**
 * hello in `format`, then the state frame opened. 'refused': the channel closed without one
 * (an older server refuses a format it does not know that way). Other failures throw.
 */
async function askForState(path: string, format: ExportFormat, timeoutMs: number): Promise<'refused' | { socket: net.Socket; frames: FrameQueue; bytes: Buffer; format: ExportFormat }> {
  const socket = await connectUnix(path);
  try {
    const frames = frameQueue(socket);
    const own = ephemeralKey();
    socket.write(encodeFrame(FrameType.hello, Buffer.concat([Buffer.from([format]), own.publicKey])));
    const state = await frames.next(timeoutMs);
    if (!state && frames.closed) {
      socket.destroy();
      return 'refused';
    }
    if (!state || state.type !== FrameType.state || state.payload.length < ID_LENGTH + PUBLIC_KEY_LENGTH) {
      throw new UserError('takeover: the running server sent no session state');
    }
    const id = state.payload.subarray(0, ID_LENGTH);
    const oldPublic = state.payload.subarray(ID_LENGTH, ID_LENGTH + PUBLIC_KEY_LENGTH);
    const key = sealingKey(own, oldPublic, Buffer.concat([id, oldPublic, own.publicKey]));
    const bytes = key && open(key, state.payload.subarray(ID_LENGTH + PUBLIC_KEY_LENGTH), additionalData(format, id, oldPublic, own.publicKey));
    key?.fill(0);
    if (!bytes) throw new UserError('takeover: the session state does not authenticate');
    return { socket, frames, bytes, format };
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

interface FrameQueue {
  next(ms: number): Promise<Frame | undefined>;
  /** True once the socket closed (next() then gives what was queued, then undefined at once). */
  readonly closed: boolean;
}

/** Frames of a socket, awaited one at a time; undefined once it closed or the wait timed out. */
function frameQueue(socket: net.Socket): FrameQueue {
  const queue: Frame[] = [];
  let waiter: ((f: Frame | undefined) => void) | undefined;
  let closed = false;
  readFrames(socket, (f) => {
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w(f);
    } else queue.push(f);
  });
  socket.on('close', () => {
    closed = true;
    waiter?.(undefined);
    waiter = undefined;
  });
  return {
    get closed() {
      return closed;
    },
    next(ms) {
      const f = queue.shift();
      if (f || closed) return Promise.resolve(f);
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          waiter = undefined;
          resolve(undefined);
        }, ms);
        waiter = (frame) => {
          clearTimeout(t);
          resolve(frame);
        };
      });
    },
  };
}

/** Listens on a Unix socket path; a stale socket file of a process that is gone is removed first. */
async function listenUnix(server: net.Server, path: string): Promise<void> {
  const live = await connectUnix(path).then((s) => (s.destroy(), true), () => false);
  if (live) throw new UserError(`takeover: another server already listens on ${path}`);
  try {
    unlinkSync(path);
  } catch {
    // none there
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function connectUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => reject(new UserError(`takeover: no running server to take over at ${path} (${e.code ?? e.message})`)));
  });
}
