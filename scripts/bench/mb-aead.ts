/**
 * Micro-benchmark of one record's protection (TLS_PSK_WITH_AES_128_CCM_8, 24-byte plaintext):
 * seal and open through the suite, and node's CCM with a KeyObject key versus a raw Buffer key.
 * Rounds are interleaved and the best round counts, since the bench machine is shared.
 * Run: taskset -c 1 npx tsx scripts/bench/mb-aead.ts
 */
import { createCipheriv, createSecretKey } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { TLS_PSK_WITH_AES_128_CCM_8 } from '../../src/dtls/ciphers/index.js';

const keys = { macKey: Buffer.alloc(0), encKey: Buffer.alloc(16, 7), fixedIv: Buffer.alloc(4, 1) };
const p = TLS_PSK_WITH_AES_128_CCM_8.createProtection(keys, { encryptThenMac: false });
const pt = Buffer.alloc(24, 3);
const ko = createSecretKey(Buffer.alloc(16, 7));
const raw = Buffer.alloc(16, 7);
const nonce = Buffer.alloc(12);
const aad = Buffer.alloc(13);
const N = 50_000;
const best = { seal: Infinity, open: Infinity, keyObject: Infinity, rawKey: Infinity };

function time(body: () => void): number {
  const t = performance.now();
  for (let i = 0; i < N; i++) body();
  return ((performance.now() - t) / N) * 1000;
}

let seq = 0;
const sealed = p.seal(23, 0xfefd, 1, 1, pt);
for (let round = 0; round < 12; round++) {
  best.seal = Math.min(best.seal, time(() => p.seal(23, 0xfefd, 1, seq++, pt)));
  best.open = Math.min(best.open, time(() => p.open(23, 0xfefd, 1, 1, sealed)));
  const bare = (key: typeof ko | Buffer) => () => {
    const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: 8 });
    c.setAAD(aad, { plaintextLength: pt.length });
    c.update(pt);
    c.final();
    c.getAuthTag();
  };
  best.keyObject = Math.min(best.keyObject, time(bare(ko)));
  best.rawKey = Math.min(best.rawKey, time(bare(raw)));
}
console.log(Object.entries(best).map(([k, v]) => `${k} ${v.toFixed(2)} µs`).join(', '));
