/**
 * Loads a `--routes` module: TypeScript or JavaScript, ESM or CommonJS, in any folder (no
 * package.json, `"type": "commonjs"` from `npm init -y`, or `"type": "module"`). tsx's scoped
 * `tsImport` compiles it whatever the folder says, so the README's example loads as written;
 * node's own import() would take a .ts file in a CommonJS folder for CommonJS and fail.
 *
 * Each failure says what is wrong: not found, a syntax error (with its line), an error thrown
 * while loading, no default export, a default export that is not a function.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Router } from '../coap/router.js';
import { UserError } from '../errors.js';

type MountRoutes = (router: Router) => void | Promise<void>;

const EXAMPLE = 'export default function routes(router) { router.get(...) }';

export async function loadRoutesModule(file: string): Promise<MountRoutes> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UserError(`route file ${file}: not found`);
  const { tsImport } = await import('tsx/esm/api');
  let mod: Record<string, unknown>;
  try {
    mod = (await tsImport(pathToFileURL(path).href, import.meta.url)) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`route file ${file}: ${loadFailure(e)}`);
  }
  return mountFunction(file, mod);
}

function loadFailure(e: unknown): string {
  const err = e as Error & { code?: string };
  const message = err instanceof Error ? err.message : String(e);
  // esbuild: "Transform failed with 1 error:\n/path/file.ts:3:0: ERROR: Expected ")" but found "}""
  const syntax = /^Transform failed[^\n]*\n(?:.*?:(\d+):(\d+): )?(?:ERROR: )?(.*)$/m.exec(message);
  if (err.name === 'TransformError' || syntax) return `syntax error${syntax?.[1] ? ` at line ${syntax[1]}` : ''}: ${syntax?.[3] ?? message}`;
  if (err instanceof SyntaxError) return `syntax error: ${message.split('\n')[0]}`;
  if (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') return `an import cannot be found: ${message.split('\n')[0]}`;
  return `threw while loading: ${message.split('\n')[0]}`;
}

/** The default export, also when tsx compiled the file to CommonJS (its exports object, marked __esModule). */
function mountFunction(file: string, mod: Record<string, unknown>): MountRoutes {
  let def = mod.default;
  let exported = Object.keys(mod);
  if (def !== null && typeof def === 'object' && (def as { __esModule?: boolean }).__esModule === true) {
    exported = Object.keys(def);
    def = (def as { default?: unknown }).default;
  }
  if (typeof def === 'function') return def as MountRoutes;
  if (def === undefined) {
    const named = exported.filter((k) => k !== 'default' && k !== '__esModule');
    throw new UserError(`route file ${file}: has no default export${named.length ? ` (it exports ${named.join(', ')})` : ''}; write ${EXAMPLE}`);
  }
  throw new UserError(`route file ${file}: the default export is ${def === null ? 'null' : typeof def}, not a function (router) => void; write ${EXAMPLE}`);
}
