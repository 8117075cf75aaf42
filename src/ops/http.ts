/**
 * The operations port: `GET /metrics` (Prometheus text format) and `GET /healthz` (200 when the
 * HSM answered a test derivation in time, 503 otherwise). Plain node:http: two routes do not
 * need a framework. It binds 127.0.0.1 unless told otherwise — metrics name device identities'
 * traffic patterns and should not face the devices' network by accident.
 */
import http from 'node:http';
import type { HealthResult } from './health.js';

/** What /metrics serves: a ServerMetrics, or the workers' sum in the cluster primary. */
export interface MetricsExposition {
  readonly registry: { readonly contentType: string };
  metrics(): Promise<string>;
}

/** What /healthz asks: a HealthProbe, or every worker's in the cluster primary. */
export interface HealthCheck {
  check(): Promise<HealthResult>;
}

export interface OpsHttpServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startOpsHttp(
  metrics: MetricsExposition,
  health: HealthCheck | undefined,
  port: number,
  host = '127.0.0.1',
): Promise<OpsHttpServer> {
  const server = http.createServer((req, res) => {
    void answer(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  async function answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      const body = await metrics.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body);
      return;
    }
    if (path === '/healthz') {
      if (!health) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","hsm":"not probed"}\n');
        return;
      }
      const r = await health.check();
      const body = JSON.stringify({ status: r.ok ? 'ok' : 'unavailable', hsm: r.detail, ms: r.ms });
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${body}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
  }
  // Scrapers keep connections alive; close() must not wait for them.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as { address: string; port: number };
  let closing: Promise<void> | undefined;
  return {
    address: a.address,
    port: a.port,
    close() {
      closing ??= new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
