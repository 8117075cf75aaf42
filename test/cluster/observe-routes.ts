/**
 * Routes for the graceful-restart test (`coap-psk serve --routes`): GET /value with Observe
 * (RFC 7641) registers an observer, answered with the current value; POST /bump changes the
 * value and notifies every observer once, and answers the new value and how many observers
 * it reached. The value is this process's own (a successor starts from v0 again). The test
 * decides when notifications go: no timer.
 */
import type { Router, RouteResponse } from '../../src/index.js';

export default function routes(router: Router): void {
  let value = 0;
  const observers = new Set<RouteResponse>();
  router.get('/value', { obs: true }, (_req, res) => {
    if (res.observing) {
      observers.add(res);
      res.onClose(() => observers.delete(res));
    }
    res.write(`v${value}`);
  });
  router.post('/bump', (_req, res) => {
    value++;
    for (const o of observers) o.write(`v${value}`);
    res.code = '2.04';
    res.end(`v${value} ${observers.size}`);
  });
}
