/**
 * A CoAP peer over this project's DTLS client, speaking raw CoAP built and parsed by
 * `coap-packet` (node-coap's codec: independent of the server's own codec), for conformance
 * tests on the real server. Every wait is bounded.
 */
import dgram from 'node:dgram';
import { generate, parse, type Packet, type ParsedPacket } from 'coap-packet';
import { DtlsClientSession, type DtlsClientOptions } from '../../src/dtls/client.js';

export type { ParsedPacket };

export class DtlsCoapPeer {
  readonly inbox: ParsedPacket[] = [];
  /** Datagrams (any record) that reached the client socket after `session.close()`. */
  datagramsAfterClose = 0;
  private wake: (() => void) | undefined;
  private closedSession = false;
  private detach: () => void = () => {};

  private constructor(public socket: dgram.Socket, readonly session: DtlsClientSession, private readonly ownSocket: boolean) {
    session.on('data', (d: Buffer) => {
      try {
        this.inbox.push(parse(d));
      } catch {
        this.inbox.push({ code: 'unparseable', confirmable: false, reset: false, ack: false, messageId: -1, token: Buffer.alloc(0), options: [], payload: d });
      }
      this.wake?.();
    });
    session.on('error', () => {});
  }

  /**
   * A handshake as `serial` to 127.0.0.1:port, on `socket` if given (its local port fixed), else
   * a new one; `client` adds options of the DTLS client (e.g. connectionId).
   */
  static async connect(port: number, serial: string, psk: Buffer, socket?: dgram.Socket, client: Partial<DtlsClientOptions> = {}): Promise<DtlsCoapPeer> {
    const sock = socket ?? dgram.createSocket('udp4');
    if (!socket) await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let peer: DtlsCoapPeer | undefined;
    const session = new DtlsClientSession({ ...client, identity: serial, psk }, (d) => (peer?.socket ?? sock).send(d, port, '127.0.0.1'));
    peer = new DtlsCoapPeer(sock, session, !socket);
    const onMessage = (m: Buffer) => {
      if (peer.closedSession) peer.datagramsAfterClose++;
      else session.onDatagram(m);
    };
    sock.on('message', onMessage);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('handshake timeout')), 10_000);
      session.once('established', () => {
        clearTimeout(t);
        resolve();
      });
      session.once('close', (reason: string) => {
        clearTimeout(t);
        reject(new Error(reason));
      });
      session.start();
    });
    session.removeAllListeners('close');
    peer.detach = () => peer.socket.off('message', onMessage);
    peer.onMessage = onMessage;
    return peer;
  }

  private onMessage: (m: Buffer) => void = () => {};

  /** A NAT rebinding: the session goes on from a new socket (a new source port); the old one closes. Resolves with the new port. */
  async rebind(): Promise<number> {
    const next = dgram.createSocket('udp4');
    await new Promise<void>((r) => next.bind(0, '127.0.0.1', () => r()));
    const old = this.socket;
    old.off('message', this.onMessage);
    next.on('message', this.onMessage);
    this.socket = next;
    if (this.ownSocket) await new Promise<void>((r) => old.close(() => r()));
    return next.address().port;
  }

  send(p: Packet | Buffer): void {
    this.session.send(Buffer.isBuffer(p) ? p : generate(p));
  }

  /** The first message received (now or within timeoutMs) that matches; it leaves the inbox. */
  async next(match: (p: ParsedPacket) => boolean = () => true, timeoutMs = 3000): Promise<ParsedPacket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no matching CoAP message in time');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
    }
  }

  /** Everything that arrives within ms (and what was already waiting). */
  async collect(ms: number): Promise<ParsedPacket[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.inbox.splice(0);
  }

  /** close_notify, keeping the socket open so that anything the server sends later is seen. */
  endSession(): void {
    this.session.close(true);
    this.closedSession = true;
  }

  /** A reboot: the client forgets the session without a word (no close_notify) and lets go of the socket. */
  abandon(): void {
    this.closedSession = true;
    this.detach();
  }

  async close(): Promise<void> {
    if (!this.closedSession) this.endSession();
    this.detach();
    if (this.ownSocket) await new Promise<void>((r) => this.socket.close(() => r()));
  }
}

/** An option's unsigned integer value. */
export function uint(b: Buffer | undefined): number | undefined {
  if (b === undefined) return undefined;
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

export function option(p: ParsedPacket, name: string | number): Buffer | undefined {
  return p.options.find((o) => o.name === name)?.value;
}

/** Block1/Block2 value (RFC 7959 2.2), encoded by the test itself. */
export function block(num: number, more: boolean, szx: number): Buffer {
  const v = num * 16 + (more ? 8 : 0) + szx;
  if (v < 0x100) return Buffer.from([v]);
  if (v < 0x10000) return Buffer.from([v >> 8, v & 0xff]);
  return Buffer.from([v >> 16, (v >> 8) & 0xff, v & 0xff]);
}

export function unblock(b: Buffer | undefined): { num: number; more: boolean; szx: number } | undefined {
  const v = uint(b);
  return v === undefined ? undefined : { num: Math.floor(v / 16), more: (v & 8) !== 0, szx: v & 7 };
}
