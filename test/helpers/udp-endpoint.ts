/**
 * A SecureEndpoint over plain UDP on 127.0.0.1, standing in for the DTLS server in the CoAP
 * tests: a real bound socket, with "sessions" fixed up front as a map from client port to
 * PSK identity. Datagrams from ports without a session are dropped, as DTLS would drop them.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { PeerIdentity, SecureEndpoint } from '../../src/coap/types.js';

export const LOOPBACK = '127.0.0.1';

export class UdpEndpoint extends EventEmitter implements SecureEndpoint {
  /** Datagrams received from ports without a session. */
  dropped = 0;
  /** Every datagram sent to a peer, in order. */
  readonly sent: Array<{ port: number; data: Buffer }> = [];
  private readonly sessions = new Map<number, PeerIdentity>();

  private constructor(private readonly sock: dgram.Socket) {
    super();
    sock.on('message', (msg, rinfo) => {
      if (this.peer(rinfo.address, rinfo.port) === undefined) this.dropped++;
      else this.emit('data', rinfo.address, rinfo.port, msg);
    });
  }

  static async open(): Promise<UdpEndpoint> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((done) => sock.bind(0, LOOPBACK, done));
    return new UdpEndpoint(sock);
  }

  get port(): number {
    return this.sock.address().port;
  }

  /** Establishes a "session" for a client port. */
  accept(port: number, identity: string, keyLabel = 'master-2024', cipherSuite = 'TLS_PSK_WITH_AES_128_CCM_8'): void {
    this.sessions.set(port, { identity, identityBytes: Buffer.from(identity, 'utf8'), keyLabel, cipherSuite });
  }

  forget(port: number): void {
    this.sessions.delete(port);
  }

  send(address: string, port: number, data: Buffer): boolean {
    if (this.peer(address, port) === undefined) return false;
    this.sent.push({ port, data: Buffer.from(data) });
    this.sock.send(data, port, address);
    return true;
  }

  peer(address: string, port: number): PeerIdentity | undefined {
    return address === LOOPBACK ? this.sessions.get(port) : undefined;
  }

  close(): Promise<void> {
    return new Promise((done) => this.sock.close(() => done()));
  }
}

/** A client-side UDP socket on loopback with a kernel-chosen port. */
export async function clientSocket(): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((done) => sock.bind(0, LOOPBACK, done));
  return sock;
}
