/** The committed corpus is what the captured flights give (rebuild: npx tsx test/fuzz/build-corpus.ts). */
import { expect, it } from 'vitest';
import { CORPUS_KINDS, buildCorpus, loadCorpus } from './corpus.js';

it('test/fixtures/corpus matches test/fixtures/flights and has a seed of every kind', () => {
  const built = buildCorpus();
  const loaded = loadCorpus();
  for (const kind of CORPUS_KINDS) {
    expect(loaded[kind].map((b) => b.toString('hex')), kind).toEqual(built[kind].map((b) => b.toString('hex')));
    expect(loaded[kind].length, kind).toBeGreaterThan(0);
  }
});
