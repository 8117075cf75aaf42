/**
 * The worker side of `coap-psk serve --workers N`. A worker is the same `serve` command run by
 * node:cluster with its slot number in COAP_PSK_WORKER_ID: it opens its own PKCS#11 sessions
 * and derived-key cache, asks the primary for its socket (./sockets.ts), serves on it, and
 * answers the primary's questions (metrics as JSON, the health probe through its own HSM
 * sessions). SIGTERM, SIGINT and SIGHUP reach it from the primary and are handled as a single
 * process handles them (src/cli/serve.ts). When the primary dies, node:cluster ends the worker.
 * On a cluster node it also asks for its socket on the cluster port (./node-routing.ts).
 */
import cluster from 'node:cluster';
import type dgram from 'node:dgram';
import type { CoapPskServer } from '../server.js';
import { childLogger, type Logger } from '../log.js';
import { addWorkerSeries } from './metrics-aggregation.js';
import { passToWorker, routeWorkerCids, serveDelivered } from './cid-routing.js';
import type { NodeWorker } from './node-routing.js';
import {
  WORKER_ID_ENV, isMessage, type Answer, type Ask, type ClusterSocketGrant, type ClusterSocketRequest, type PeerHello, type Serving,
  type SocketGrant, type SocketRequest,
} from './messages.js';

/** How long a worker waits for its socket before giving up (the primary is gone or stuck). */
const SOCKET_WAIT_MS = 10_000;

export interface WorkerRole {
  /** 1..N */
  readonly id: number;
  /** The logger with `worker: id` on every line. */
  logger(base: Logger): Logger;
  /** The socket the primary bound for this slot. */
  socket(): Promise<dgram.Socket>;
  /** After socket(), before listen: CIDs name this worker, others' CID records go to their owner. */
  routeCids(server: CoapPskServer, log: Logger): void;
  /** On a cluster node, instead of routeCids: the cluster port's socket and this worker's part. */
  nodeWorker(server: CoapPskServer): Promise<NodeWorker>;
  /** After a failed start: lets the process end (and the primary see it) once the error is out. */
  release(): void;
  /** Tells the primary this worker serves, and answers its questions from now on. */
  serving(server: CoapPskServer, port: number): void;
}

/** This process's worker role, or undefined when it is not a worker of `serve`. */
export function clusterWorker(env: NodeJS.ProcessEnv = process.env): WorkerRole | undefined {
  const id = Number(env[WORKER_ID_ENV]);
  if (!cluster.isWorker || !Number.isInteger(id) || id < 1) return undefined;
  const send = (m: SocketRequest | ClusterSocketRequest | Serving | Answer | PeerHello) => process.send?.(m);
  let cid: SocketGrant['cid'];
  /** The primary's grant of `type` to `request`, with the socket it carries. */
  const granted = <T extends SocketGrant | ClusterSocketGrant>(request: SocketRequest | ClusterSocketRequest, type: T['type']) =>
    new Promise<{ grant: T; socket: dgram.Socket }>((resolve, reject) => {
      const timer = setTimeout(() => {
        process.off('message', onMessage);
        reject(new Error(`worker ${id}: no socket from the primary within ${SOCKET_WAIT_MS} ms`));
      }, SOCKET_WAIT_MS);
      const onMessage = (m: unknown, handle: unknown) => {
        if (!isMessage<T>(m, type) || handle === undefined) return;
        clearTimeout(timer);
        process.off('message', onMessage);
        resolve({ grant: m, socket: handle as dgram.Socket });
      };
      process.on('message', onMessage);
      send(request);
    });
  return {
    id,
    logger: (base) => childLogger(base, { worker: id }),
    socket: async () => {
      const { grant, socket } = await granted<SocketGrant>({ type: 'coap-psk:socket-request' }, 'coap-psk:socket');
      cid = grant.cid;
      return socket;
    },
    async nodeWorker(server) {
      const { grant, socket } = await granted<ClusterSocketGrant>({ type: 'coap-psk:cluster-socket-request' }, 'coap-psk:cluster-socket');
      serveDelivered(server);
      return {
        slot: id,
        count: grant.workers,
        socket,
        peers: grant.peers,
        pass: passToWorker(server, id),
        heard: (node, from) => send({ type: 'coap-psk:peer-hello', node, address: from.address, port: from.port, ageMs: 0 }),
        onHeard: (listener) => process.on('message', (m: unknown) => {
          if (isMessage<PeerHello>(m, 'coap-psk:peer-hello')) listener(m);
        }),
      };
    },
    routeCids: (server, log) => routeWorkerCids(server, id, cid, log),
    release: () => process.channel?.unref(),
    serving(server, port) {
      addWorkerSeries(server, id);
      process.on('message', (m: unknown) => {
        if (!isMessage<Ask>(m, 'coap-psk:ask')) return;
        const value = m.what === 'metrics' ? server.metrics.registry.getMetricsAsJSON() : server.health.check();
        value.then(
          (v) => send({ type: 'coap-psk:answer', id: m.id, value: v }),
          () => {}, // no answer: the primary's wait for this worker runs out
        );
      });
      send({ type: 'coap-psk:serving', port });
    },
  };
}
