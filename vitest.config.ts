import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Interop tests spawn real peers (coap-client, openssl s_client) and talk to a real
    // SoftHSM token; they are bounded by their own timeouts, these are the outer limits.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: run files in parallel but never more than the machine can carry.
    maxWorkers: 2,
  },
});
