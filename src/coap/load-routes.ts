/**
 * `coap-psk serve --routes FILE`: mounts the routes of one module, whose default export is
 * `(router) => void | Promise<void>`. Relative paths are taken from the working directory.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Router } from './router.js';

export async function loadRoutes(file: string, router: Router): Promise<void> {
  const url = pathToFileURL(resolve(file)).href;
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new Error(`route file ${file}: cannot be loaded: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof mod.default !== 'function') {
    throw new Error(`route file ${file}: default export is not a function (router) => void`);
  }
  await (mod.default as (router: Router) => void | Promise<void>)(router);
}
