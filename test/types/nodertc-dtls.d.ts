// @nodertc/dtls ships no types; this is the part of its client API the tests use.
declare module '@nodertc/dtls' {
  import type { Duplex } from 'node:stream';
  interface ConnectOptions {
    type: 'udp4' | 'udp6';
    remotePort: number;
    remoteAddress: string;
    pskIdentity?: string | Buffer;
    pskSecret?: string | Buffer;
    cipherSuites?: string[];
    maxHandshakeRetransmissions?: number;
  }
  interface DtlsSocket extends Duplex {
    close(): void;
  }
  export function connect(options: ConnectOptions): DtlsSocket;
  const dtls: { connect: typeof connect };
  export default dtls;
}
