/**
 * Connection's datagram sizes: the MTU counts IP and UDP headers, 28 bytes for IPv4 and 48 for
 * IPv6 (RFC 8200's 40-byte header plus UDP's 8), so a 1280-byte MTU flight to an IPv6 peer
 * is at most 1232 bytes of UDP payload (issue 11 defect 7).
 */
import { describe, expect, it } from 'vitest';
import { Connection } from '../../../src/dtls/connection.js';
import { HandshakeType } from '../../../src/dtls/constants.js';

function flightSizes(address: string, mtu: number): number[] {
  const sizes: number[] = [];
  const conn = new Connection(address, 5684, {
    sendDatagram: (d) => sizes.push(d.length),
    onEstablished: () => {},
    onData: () => {},
    onClosed: () => {},
  }, mtu, 0);
  conn.transmit([{ kind: 'handshake', epoch: 0, msgType: HandshakeType.server_hello, messageSeq: 1, body: Buffer.alloc(4000, 1) }]);
  return sizes;
}

describe('Connection datagram sizes', () => {
  it.each([
    ['127.0.0.1', 28],
    ['::1', 48],
  ])('to %s fit the MTU with %i bytes of IP and UDP headers', (address, overhead) => {
    const sizes = flightSizes(address, 1280);
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1280 - overhead);
    expect(Math.max(...sizes)).toBeGreaterThan(1280 - overhead - 40); // and are not needlessly small
  });
});
