/**
 * An example routes module for `coap-psk serve --routes examples/sensor-routes.ts`, or for
 * `createServer({ routes })` in your own project (import from 'coap-psk-resolver' there).
 *
 *   GET  /sensors/temperature          the current value, text/plain; with Observe (RFC 7641)
 *                                      every change is pushed until the client cancels
 *   PUT  /uploads/:name                a payload of any size; large ones arrive block-wise
 *                                      (RFC 7959 Block1), the server reassembles them
 *   GET  /uploads/:name                what was received: {"bytes":N,"sha256":"..."} (JSON)
 *   GET  /identity                     how the device is known: serial and identity parts
 *
 * Try it (hex key encoding, as libcoap's -k takes the key as text):
 *   COAP_PSK_KEY_ENCODING=hex npx coap-psk serve --routes examples/sensor-routes.ts
 *   KEY=$(npx coap-psk derive SN1 | cut -d' ' -f2)
 *   coap-client-openssl -u SN1 -k "$KEY" -s 10 coaps://127.0.0.1/sensors/temperature
 *   coap-client-openssl -u SN1 -k "$KEY" -m put -b 64 -f big.bin coaps://127.0.0.1/uploads/big
 */
import { createHash } from 'node:crypto';
import type { Router } from '../src/index.js';

export interface SensorRoutesOptions {
  /** How often the simulated sensor changes. Default 1000 ms. */
  intervalMs?: number;
  /** Largest upload kept, in bytes; bigger ones get 4.13 Request Entity Too Large. Default 1 MiB. */
  maxUploadBytes?: number;
  /** Observers at most (each costs a timer slot and a DTLS session). Default 1000. */
  maxObservers?: number;
}

const TEXT_PLAIN = 'text/plain';
const APPLICATION_JSON = 'application/json';

/** A simulated temperature: a slow sine plus a step per tick, so every reading differs. */
class Sensor {
  private tick = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(value: string) => void>();

  constructor(private readonly intervalMs: number) {}

  get value(): string {
    return (21 + 3 * Math.sin(this.tick / 10) + this.tick * 0.001).toFixed(3);
  }

  get observers(): number {
    return this.listeners.size;
  }

  subscribe(listener: (value: string) => void): () => void {
    this.listeners.add(listener);
    if (!this.timer) {
      // Runs only while someone observes; never keeps the process alive on its own.
      this.timer = setInterval(() => {
        this.tick++;
        for (const l of [...this.listeners]) l(this.value);
      }, this.intervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }
}

export function sensorRoutes(options: SensorRoutesOptions = {}) {
  const sensor = new Sensor(options.intervalMs ?? 1000);
  const maxUpload = options.maxUploadBytes ?? 1 << 20;
  const maxObservers = options.maxObservers ?? 1000;
  const uploads = new Map<string, { bytes: number; sha256: string }>();

  return function mount(router: Router): void {
    router.get('/sensors/temperature', { rt: 'temperature', ct: 0, obs: true, title: 'simulated temperature' }, (req, res) => {
      res.setOption('Content-Format', TEXT_PLAIN);
      // res.observing: the client registered (Observe: 0) and the server has room for one more
      // relation (RFC 7641 4.1: otherwise the answer is a plain response, without Observe).
      if (!res.observing || sensor.observers >= maxObservers) {
        res.end(sensor.value);
        return;
      }
      // The first write() is the registration's response; then one notification per change.
      res.write(sensor.value);
      const unsubscribe = sensor.subscribe((value) => res.write(value));
      // The relation ends when the client deregisters or answers a notification with RST, a
      // confirmable notification is never acknowledged, or the DTLS session ends.
      res.onClose(unsubscribe);
    });

    router.put('/uploads/:name', (req, res) => {
      const payload = req.payload;
      if (payload.length > maxUpload) {
        res.code = '4.13';
        res.end(`at most ${maxUpload} bytes`);
        return;
      }
      // Uploads are per device: the serial is the one the session's key was derived from.
      const key = `${req.serial}/${req.params.name}`;
      const entry = { bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex') };
      if (!uploads.has(key) && uploads.size >= 10_000) uploads.delete(uploads.keys().next().value!);
      uploads.set(key, entry);
      // The server echoes the last Block1 option in this response itself (RFC 7959 2.3).
      res.code = '2.04';
      res.end();
    });

    router.get('/uploads/:name', { ct: 50 }, (req, res) => {
      const entry = uploads.get(`${req.serial}/${req.params.name}`);
      if (!entry) {
        res.code = '4.04';
        res.end('no such upload');
        return;
      }
      res.setOption('Content-Format', APPLICATION_JSON);
      res.end(JSON.stringify(entry));
    });

    router.get('/identity', { ct: 50 }, (req, res) => {
      res.setOption('Content-Format', APPLICATION_JSON);
      res.end(JSON.stringify({ identity: req.identity, serial: req.serial, parts: req.identityParts, keyLabel: req.keyLabel }));
    });
  };
}

/** `coap-psk serve --routes` calls the default export with the router. */
export default sensorRoutes({ intervalMs: Number(process.env.SENSOR_INTERVAL_MS) || 1000 });
