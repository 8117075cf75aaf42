/**
 * `coap-psk serve`'s side of a graceful restart (takeover.ts): the old process offers its
 * sessions on the channel of its listener and starts its successor on SIGUSR2; the successor
 * (`serve --takeover`) takes them and the port over instead of binding alone.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { UserError } from '../errors.js';
import type { DtlsSession } from '../dtls/session.js';
import type { Logger } from '../log.js';
import type { CoapPskServer } from '../server.js';
import type { NodeRouting } from './node-routing.js';
import { reusePortSupported } from './support.js';
import { offerTakeover, takeOver } from './takeover.js';
import { takeoverSocketPath } from './takeover-channel.js';

/**
 * `serve --takeover`: the sessions first, then the UDP port (SO_REUSEPORT), then the metrics
 * port the old one let go. `bound` runs once the port is bound, before the old process is told
 * ready (the PID file is rewritten there). `routing`: a cluster node's, already on the cluster
 * port beside the old one's; it learns the old one's peers with the sessions.
 */
export async function listenByTakeover(server: CoapPskServer, host: string, port: number, logger: Logger, bound?: () => void, routing?: NodeRouting): Promise<{ address: string; port: number }> {
  if (!reusePortSupported()) throw new UserError(`--takeover needs Node.js 22.12 or later (dgram reusePort); this is Node.js ${process.versions.node}`);
  if (port === 0) throw new UserError('--takeover needs the listener port of the running server (listener.port is 0)');
  let address: { address: string; port: number } | undefined;
  // The CoAP state rides beside each session (src/coap/handover.ts); the relations' handlers run once ready is sent.
  const app = {
    restore: (session: DtlsSession, state: Buffer) => void server.coap.restoreState(session, state),
    resume: () => server.coap.resumeRestored(),
  };
  const peers = routing && ((table: Buffer) => void logger.info({ peers: routing.learn(table) }, 'takeover: the cluster peers of the old process entered'));
  const sessions = await takeOver(takeoverSocketPath(host, port), { dtls: server.dtls, app, peers }, async () => {
    address = await server.listen(port, host, { reusePort: true, deferOps: true });
    bound?.();
  }, logger);
  await server.startOps();
  logger.info({ sessions }, 'takeover complete');
  return address!;
}

/**
 * A server that offers takeover binds with SO_REUSEPORT, which a second server of the same
 * user would join silently, splitting the devices between the two. So the port is first bound
 * once without it: any socket on the port (with or without SO_REUSEPORT) makes that fail with
 * EADDRINUSE, as a start on a taken port always has. Only `--takeover` joins on purpose.
 */
export async function assertPortFree(host: string, port: number): Promise<void> {
  const probe = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.bind(port, host, () => resolve());
  }).finally(() => new Promise<void>((resolve) => {
    try {
      probe.close(() => resolve());
    } catch {
      resolve(); // never bound
    }
  }));
}

/**
 * The old side: offers the sessions on the listener's channel; `exit` ends the process once they
 * are handed over, `failed` runs when a takeover failed half-way (this process serves on).
 * `routing`: a cluster node's; its peer table goes with the sessions, its port closes last.
 */
export async function offerTakeoverFrom(server: CoapPskServer, host: string, port: number, logger: Logger, exit: () => void, failed?: () => void, routing?: NodeRouting): Promise<void> {
  try {
    const path = takeoverSocketPath(host, port);
    await offerTakeover(path, {
      dtls: server.dtls,
      drain: async (ms) => {
        await server.router.drain(ms);
      },
      // The cluster port after the drain: the replies of the sessions forwarded here go back by it.
      close: () => server.close().then(() => routing?.close()),
      peers: routing && (() => routing.peerTable()),
      app: {
        export: (session) => server.coap.exportState(session),
        failed: () => {
          server.coap.skipAfterFailedHandover();
          failed?.();
        },
      },
    }, logger, exit);
  } catch (e) {
    // Serving goes on; only the graceful restart is unavailable, and the log says why.
    logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'graceful restart unavailable');
  }
}

/** SIGUSR2: starts `serve --takeover` with this process's argv and environment (the version now on disk). */
export function restartByTakeover(logger: Logger): void {
  const args = [...process.execArgv, ...process.argv.slice(1)];
  if (!args.includes('--takeover')) args.push('--takeover');
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: process.env });
  logger.info({ pid: child.pid }, 'SIGUSR2: starting the successor (serve --takeover)');
  child.on('exit', (code, signal) => {
    // Reached only while this process still runs: the takeover failed and this one serves on.
    if (code !== 0) logger.error({ code, signal }, 'the successor exited; still serving');
  });
  child.unref();
}
