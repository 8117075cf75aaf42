/**
 * Routes for the cluster test's nodes (`coap-psk serve --routes`): GET /node answers the name
 * the test gave the node in COAP_PSK_TEST_NODE, so a device can tell which node holds its session.
 */
import type { Router } from '../../src/index.js';

export default function routes(router: Router): void {
  router.get('/node', (_req, res) => res.end(process.env.COAP_PSK_TEST_NODE ?? 'unnamed'));
}
