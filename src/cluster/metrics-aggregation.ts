/**
 * /metrics across workers. The primary asks each serving worker for its ServerMetrics registry
 * as JSON (over the cluster channel, ./primary.ts), sums the series with prom-client's
 * AggregatorRegistry.aggregate, and appends its own (workers up, restarts). A worker that is
 * starting or does not answer in time is left out of that scrape rather than failing it
 * (prom-client's clusterMetrics() would wait for every connected worker and then fail).
 *
 * Summed series keep their meaning (sessions, handshakes, requests); `coap_psk_hsm_up` becomes
 * the number of workers whose last probe reached the HSM. The sum hides which worker does
 * what, so each worker also exports a few series labelled with its id
 * (`coap_psk_worker_sessions{worker="2"}`), which the aggregation keeps apart.
 */
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { CoapPskServer } from '../server.js';

const PREFIX = 'coap_psk_';

export type RegistryJson = MetricObjectWithValues<MetricValue<string>>[];

/** In a worker: series labelled with the worker id, in the server's own registry. */
export function addWorkerSeries(server: CoapPskServer, workerId: number): void {
  const registers = [server.metrics.registry];
  const worker = String(workerId);
  new Gauge({
    name: `${PREFIX}worker_sessions`, help: 'Established DTLS sessions, by worker', labelNames: ['worker'], registers,
    collect() {
      this.set({ worker }, server.dtls.sessionCount);
    },
  });
  const handshakes = new Counter({
    name: `${PREFIX}worker_handshakes_total`, help: 'DTLS handshakes finished, by worker and result', labelNames: ['worker', 'result'], registers,
  });
  server.on('handshake', (e) => handshakes.inc({ worker, result: e.result }));
}

export interface PrimaryMetrics {
  readonly registry: { readonly contentType: string };
  readonly workersUp: Gauge;
  readonly restarts: Counter<'worker'>;
  /** The text exposition of the workers' registries (as JSON) summed, then the primary's. */
  render(workers: RegistryJson[]): Promise<string>;
}

export function primaryMetrics(workers: number): PrimaryMetrics {
  const own = new Registry();
  const registers = [own];
  new Gauge({ name: `${PREFIX}workers`, help: 'Worker processes configured (--workers)', registers }).set(workers);
  const workersUp = new Gauge({ name: `${PREFIX}workers_up`, help: 'Worker processes serving now', registers });
  const restarts = new Counter({ name: `${PREFIX}worker_restarts_total`, help: 'Workers started again after they died, by worker', labelNames: ['worker'], registers });
  return {
    registry: { contentType: own.contentType },
    workersUp,
    restarts,
    async render(fromWorkers) {
      const summed = fromWorkers.length > 0 ? await AggregatorRegistry.aggregate(fromWorkers).metrics() : '';
      return `${summed.trimEnd()}\n${await own.metrics()}`;
    },
  };
}
