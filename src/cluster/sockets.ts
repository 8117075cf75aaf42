/**
 * The primary binds every worker's socket and keeps its own descriptor of each.
 *
 * Why not let each worker bind its own: the kernel keeps a port's SO_REUSEPORT sockets in an
 * array and picks one by the 4-tuple's hash modulo its length. When a socket closes, the last
 * one moves into its place, and a new one goes to the end: after worker 1 of 2 dies and is
 * replaced, the peers of worker 2 would reach the replacement (measured on Linux 6.18, Node 24:
 * every peer of the survivor moved). With the primary holding each socket, a dead worker's
 * socket stays in the array, its datagrams wait in its buffer for the replacement, and the
 * other workers' peers never move.
 *
 * The primary must not read from these sockets: node:dgram starts reading at bind and has no
 * public call to stop. `holdWithoutReading` stops it through the socket's internal handle
 * (recvStop, present since Node 11); where that is missing, the primary closes its descriptor
 * after handing a socket over (each worker then owns its socket, and a restart moves peers).
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';

export interface SocketSizes {
  recvBufferSize: number;
  sendBufferSize: number;
}

/** Binds `count` SO_REUSEPORT sockets on host:port (port 0: the first picks one for all). */
export async function bindSocketGroup(count: number, port: number, host: string, sizes: SocketSizes): Promise<dgram.Socket[]> {
  const sockets: dgram.Socket[] = [];
  try {
    for (let i = 0; i < count; i++) sockets.push(await bindReusePort(i === 0 ? port : sockets[0]!.address().port, host, sizes));
  } catch (e) {
    await Promise.all(sockets.map(closeSocket));
    throw e;
  }
  return sockets;
}

export function bindReusePort(port: number, host: string, sizes: SocketSizes): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', reusePort: true, ...sizes } as dgram.SocketOptions);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** Stops this process reading the socket; false when node's internals do not allow it. */
export function holdWithoutReading(socket: dgram.Socket): boolean {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = key && (socket as unknown as Record<symbol, { handle?: { recvStop?: () => number }; receiving?: boolean }>)[key];
  if (typeof state?.handle?.recvStop !== 'function') return false;
  state.handle.recvStop();
  state.receiving = false;
  return true;
}

export function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
