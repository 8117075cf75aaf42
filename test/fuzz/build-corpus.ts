/** Writes test/fixtures/corpus/*.hex from the captured flights: `npx tsx test/fuzz/build-corpus.ts`. */
import { writeFileSync } from 'node:fs';
import { CORPUS_DIR, CORPUS_KINDS, buildCorpus, corpusFileText } from './corpus.js';

const corpus = buildCorpus();
for (const kind of CORPUS_KINDS) {
  writeFileSync(new URL(`${kind}.hex`, CORPUS_DIR), corpusFileText(corpus[kind]));
  process.stdout.write(`${kind}: ${corpus[kind].length}\n`);
}
