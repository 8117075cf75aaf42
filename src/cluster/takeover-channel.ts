/**
 * The local channel of a graceful restart: frames over a Unix stream socket, and where that
 * socket lives. Frame: uint8 type ‖ uint32 length ‖ payload (big-endian).
 *
 * The socket is in a directory only the service user may enter (mode 0700, owned by it):
 * $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=, made 0700 for the unit), else
 * $XDG_RUNTIME_DIR/coap-psk, else <tmpdir>/coap-psk-<uid>. Its name comes from the
 * configuration's listener (host and port), so the new process finds the old one serving the
 * same port, and two servers on different ports never meet.
 */
import { mkdirSync, lstatSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';

export const FrameType = {
  /** new → old: format version (uint8) ‖ X25519 public key (32). */
  hello: 1,
  /** old → new: takeover id (16) ‖ X25519 public key (32) ‖ sealed session state. */
  state: 2,
  /** new → old: sessions imported and the port bound. */
  ready: 3,
  /** old → new: a datagram that reached the old socket during the hand-over: uint16 port ‖ address<1> ‖ datagram. */
  datagram: 4,
  /** old → new: the old process let go of everything (socket, metrics port); the new one carries on alone. */
  done: 5,
  /**
   * old → new, right after state: a cluster node's peer table (node-routing.ts; empty when the
   * old process is no node), nothing secret. A successor of the previous version ignores it.
   */
  peers: 6,
  /**
   * old → new: a record another node forwarded to the old process during the hand-over: uint16 via
   * (the node its replies go back through; 0xffff: none) ‖ as in datagram. Ignored by the previous version.
   */
  forwarded: 7,
} as const;

/** Session state of a few hundred thousand sessions fits; nothing larger is buffered. */
export const MAX_FRAME = 64 * 1024 * 1024;

export interface Frame {
  readonly type: number;
  readonly payload: Buffer;
}

export function encodeFrame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/**
 * Calls `onFrame` for each whole frame that arrives on `socket`; a frame over MAX_FRAME ends
 * the connection (the peer is not what it claims).
 */
export function readFrames(socket: net.Socket, onFrame: (f: Frame) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 5) {
      const length = buffered.readUInt32BE(1);
      if (length > MAX_FRAME) {
        socket.destroy();
        return;
      }
      if (buffered.length < 5 + length) return;
      const frame = { type: buffered[0]!, payload: buffered.subarray(5, 5 + length) };
      buffered = buffered.subarray(5 + length);
      onFrame(frame);
    }
  });
}

export function encodeDatagram(msg: Buffer, address: string, port: number): Buffer {
  const a = Buffer.from(address, 'utf8');
  const head = Buffer.alloc(3);
  head.writeUInt16BE(port, 0);
  head.writeUInt8(a.length, 2);
  return Buffer.concat([head, a, msg]);
}

const NO_VIA = 0xffff;

/** A held datagram in a frame: `datagram`, or `forwarded` with its via. */
export function datagramFrame(d: { msg: Buffer; address: string; port: number; forwarded?: boolean; via?: number }): Buffer {
  const body = encodeDatagram(d.msg, d.address, d.port);
  if (!d.forwarded) return encodeFrame(FrameType.datagram, body);
  const via = Buffer.alloc(2);
  via.writeUInt16BE(d.via ?? NO_VIA, 0);
  return encodeFrame(FrameType.forwarded, Buffer.concat([via, body]));
}

/** A `datagram` or `forwarded` frame's datagram, as onDatagram takes it; undefined for any other frame. */
export function decodeDatagramFrame(f: Frame): { msg: Buffer; address: string; port: number; forwarded: boolean; via?: number } | undefined {
  if (f.type === FrameType.datagram) {
    const d = decodeDatagram(f.payload);
    return d && { ...d, forwarded: false };
  }
  if (f.type !== FrameType.forwarded || f.payload.length < 2) return undefined;
  const via = f.payload.readUInt16BE(0);
  const d = decodeDatagram(f.payload.subarray(2));
  return d && { ...d, forwarded: true, via: via === NO_VIA ? undefined : via };
}

export function decodeDatagram(b: Buffer): { msg: Buffer; address: string; port: number } | undefined {
  if (b.length < 3 || b.length < 3 + b[2]!) return undefined;
  return { port: b.readUInt16BE(0), address: b.subarray(3, 3 + b[2]!).toString('utf8'), msg: b.subarray(3 + b[2]!) };
}

/** The channel's path for a listener (see the file comment); the directory is made or checked here. */
export function takeoverSocketPath(host: string, port: number, env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.RUNTIME_DIRECTORY?.split(':')[0] || (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'coap-psk') : join(tmpdir(), `coap-psk-${process.getuid?.() ?? 'user'}`));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new UserError(`takeover: ${dir} must be a directory of this user that no one else may enter (mode 0700)`);
  }
  return join(dir, `takeover-${host.replace(/[^0-9A-Za-z.]/g, '_')}-${port}.sock`);
}
