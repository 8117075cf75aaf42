// Free ports on 127.0.0.1 for tests that start real peers.
//
// The race: we bind port 0, read the port the kernel chose, and close the socket before the
// caller (or a child process) binds it. Between our close and their bind, any other process on
// the machine may take the same port; the kernel hands out ephemeral ports in order, so this is
// rare but not impossible (two vitest workers run in parallel here). Callers that spawn a
// server should therefore treat "address in use" as retryable: take a new port and start again
// (startCoapServerOpenssl in ./peers.ts does this, a bounded number of times).

import dgram from 'node:dgram';
import net from 'node:net';

export const LOOPBACK = '127.0.0.1';

function bindUdp(port: number): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    sock.once('error', () => {
      sock.close();
      resolve(undefined);
    });
    sock.bind(port, LOOPBACK, () => resolve(sock));
  });
}

function listenTcp(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen({ port, host: LOOPBACK, exclusive: true }, () => resolve(srv));
  });
}

function closeUdp(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => sock.close(() => resolve()));
}

function closeTcp(srv: net.Server): Promise<void> {
  return new Promise((resolve) => srv.close(() => resolve()));
}

/** A UDP port on 127.0.0.1 that was free a moment ago (see the race above). */
export async function freeUdpPort(): Promise<number> {
  const sock = await bindUdp(0);
  if (!sock) throw new Error('freeUdpPort: cannot bind UDP 127.0.0.1:0');
  const { port } = sock.address();
  await closeUdp(sock);
  return port;
}

/**
 * A port p such that p and p+1 were both free on 127.0.0.1, for UDP and TCP alike.
 * libcoap's coap-server binds `-p p` for coap (UDP) and coap+tcp, and p+1 for coaps (DTLS)
 * and coaps+tcp, so it needs all four. Bounded: gives up after `attempts` tries.
 */
export async function freePortPair(attempts = 20): Promise<number> {
  for (let i = 0; i < attempts; i++) {
    const first = await bindUdp(0);
    if (!first) continue;
    const p = first.address().port;
    const held: Array<() => Promise<void>> = [() => closeUdp(first)];
    let ok = p < 65535;
    if (ok) {
      const second = await bindUdp(p + 1);
      if (second) held.push(() => closeUdp(second));
      else ok = false;
    }
    for (const port of [p, p + 1]) {
      if (!ok) break;
      const srv = await listenTcp(port);
      if (srv) held.push(() => closeTcp(srv));
      else ok = false;
    }
    for (const release of held) await release();
    if (ok) return p;
  }
  throw new Error(`freePortPair: no free pair of adjacent ports after ${attempts} tries`);
}
