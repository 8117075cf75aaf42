/**
 * Routes for the cluster test's nodes (`coap-psk serve --routes`): GET /node answers the name
 * the test gave the node in COAP_PSK_TEST_NODE, so a device can tell which node holds its session;
 * GET /where adds the worker (`node-1/2`; `/0` for a node of one process).
 */
import type { Router } from '../../src/index.js';

export default function routes(router: Router): void {
  const node = process.env.COAP_PSK_TEST_NODE ?? 'unnamed';
  router.get('/node', (_req, res) => res.end(node));
  router.get('/where', (_req, res) => res.end(`${node}/${process.env.COAP_PSK_WORKER_ID ?? '0'}`));
}
