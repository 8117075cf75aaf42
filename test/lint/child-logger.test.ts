/**
 * Every child logger in src/ is made by childLogger() (src/log.ts): pino's plain `.child()`
 * writes the child's bindings without the project's redaction (redactSecrets). A scan of the
 * source text, not of what runs, so a call on a path no test takes is caught too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');
const ALLOWED = 'src/log.ts';
const CHILD_CALL = /\.child\s*\(/;
/** A comment line, whose `.child(` is prose, not a call. */
const COMMENT = /^\s*(\/\/|\/?\*)/;

/** Every `.child(` call in src/**\/*.ts, as file:line. */
function childCalls(): string[] {
  const found: string[] = [];
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const f of files) {
    const file = relative(ROOT, join(SRC, f)).split('\\').join('/');
    readFileSync(join(SRC, f), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (CHILD_CALL.test(line) && !COMMENT.test(line)) found.push(`${file}:${i + 1}`);
      });
  }
  return found;
}

describe('child loggers', () => {
  it('are made with childLogger() everywhere in src/ but in src/log.ts itself', () => {
    const calls = childCalls();
    // The scan sees childLogger()'s own call: it reads the tree and its pattern matches.
    expect(calls.some((c) => c.startsWith(`${ALLOWED}:`))).toBe(true);
    expect(calls.filter((c) => !c.startsWith(`${ALLOWED}:`)), 'use childLogger() from src/log.ts').toEqual([]);
  });
});
