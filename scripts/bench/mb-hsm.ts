/**
 * Derivations per second through SoftHSM: the async path the server uses (Pkcs11Resolver.resolve,
 * C_EncryptInit + C_EncryptAsync on a pooled session) against the synchronous batch path of
 * `coap-psk derive` (deriveSync). Run: taskset -c 0 npx tsx scripts/bench/mb-hsm.ts
 */
import { performance } from 'node:perf_hooks';
import { createTestToken } from '../../test/helpers/softhsm.js';

const token = await createTestToken({ label: 'mb-hsm', pin: 'mb-hsm-pin', keys: [{ label: 'm', hex: '0f1e2d3c4b5a69788796a5b4c3d2e1f0' }] });
process.env.SOFTHSM2_CONF = token.confPath;
const { Pkcs11Resolver } = await import('../../src/keys/pkcs11.js');
const r = await Pkcs11Resolver.open({ modulePath: token.modulePath, tokenLabel: 'mb-hsm', pin: 'mb-hsm-pin', keyLabels: ['m'], log: () => {} });
const ids = Array.from({ length: 20_000 }, (_, i) => Buffer.from(`SN-${i}`));
try {
  for (const concurrency of [1, 4, 16, 64]) {
    const t = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < ids.length) await r.resolve(ids[next++]!);
    }));
    console.log(`async resolve, ${concurrency} at a time: ${Math.round(ids.length / ((performance.now() - t) / 1000))}/s`);
  }
  const t = performance.now();
  r.deriveSync(ids);
  console.log(`deriveSync: ${Math.round(ids.length / ((performance.now() - t) / 1000))}/s`);
} finally {
  await r.close();
  await token.cleanup();
}
