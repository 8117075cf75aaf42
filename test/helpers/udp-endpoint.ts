/**
 * The CoAP engine (src/coap/endpoint.ts) over plain UDP on 127.0.0.1, standing in for the DTLS
 * server in unit tests that use node-coap's client: each client port is one "session", opened
 * on its first datagram as the identity given by `accept`. Datagrams from ports that were never
 * accepted are dropped, as DTLS would drop them. `end(port)` ends a session as DTLS would.
 */
import dgram from 'node:dgram';
import { CoapEndpoint, type CoapEndpointOptions } from '../../src/coap/endpoint.js';
import { peerIdentity } from '../../src/coap/identity-map.js';
import type { Router } from '../../src/coap/router.js';
import type { CoapTransport } from '../../src/coap/transport.js';

export const LOOPBACK = '127.0.0.1';

class UdpSession implements CoapTransport {
  isOpen = true;
  constructor(private readonly sock: dgram.Socket, readonly address: string, readonly port: number, private readonly sent: Array<{ port: number; data: Buffer }>) {}
  send(data: Buffer): boolean {
    if (!this.isOpen) return false;
    this.sent.push({ port: this.port, data });
    this.sock.send(data, this.port, this.address);
    return true;
  }
}

export class UdpEndpoint {
  dropped = 0;
  /** Every datagram sent to a peer, in order. */
  readonly sent: Array<{ port: number; data: Buffer }> = [];
  readonly coap: CoapEndpoint;
  private readonly identities = new Map<number, string>();
  private readonly sessions = new Map<number, UdpSession>();

  private constructor(private readonly sock: dgram.Socket, router: Router, options: CoapEndpointOptions) {
    this.coap = new CoapEndpoint(router, options);
    sock.on('message', (msg, rinfo) => {
      const identity = this.identities.get(rinfo.port);
      if (identity === undefined) {
        this.dropped++;
        return;
      }
      let s = this.sessions.get(rinfo.port);
      if (s === undefined) {
        s = new UdpSession(sock, rinfo.address, rinfo.port, this.sent);
        this.sessions.set(rinfo.port, s);
        const id = Buffer.from(identity, 'utf8');
        this.coap.open(s, peerIdentity({ identity: id, identityText: identity, pskTag: 'master-2024', cipherSuite: 'TLS_PSK_WITH_AES_128_CCM_8' }));
      }
      this.coap.receive(s, msg);
    });
  }

  static async open(router: Router, options: CoapEndpointOptions = {}): Promise<UdpEndpoint> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((done) => sock.bind(0, LOOPBACK, done));
    return new UdpEndpoint(sock, router, options);
  }

  get port(): number {
    return this.sock.address().port;
  }

  accept(port: number, identity: string): void {
    this.identities.set(port, identity);
  }

  /** The CoAP state of a client port's session. */
  state(port: number) {
    const s = this.sessions.get(port);
    return s === undefined ? undefined : this.coap.stateOf(s);
  }

  /** Ends the "session" of a client port, as a DTLS close would. */
  end(port: number): void {
    const s = this.sessions.get(port);
    if (s === undefined) return;
    s.isOpen = false;
    this.sessions.delete(port);
    this.coap.close(s, 'session-closed');
  }

  close(): Promise<void> {
    this.coap.closeAll();
    return new Promise((done) => this.sock.close(() => done()));
  }
}

/** A client socket bound to an ephemeral port on 127.0.0.1. */
export async function clientSocket(): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((done) => sock.bind(0, LOOPBACK, done));
  return sock;
}
