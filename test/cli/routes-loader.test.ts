/**
 * The README's routes module loads as written in any folder (issue 16, item 2): without a
 * package.json, in an `npm init -y` project ("type": "commonjs"), and with "type": "module";
 * every failure says what is wrong. One case runs end to end: the real binary serving the
 * route from a folder without package.json, and libcoap's coap-client asking it.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRoutesModule } from '../../src/cli/routes-loader.js';
import { UserError } from '../../src/errors.js';
import { startServerProcess } from '../helpers/server-process.js';
import { coapClient } from '../helpers/peers.js';
import { MASTER_HEX, VECTORS } from '../keys/vectors.js';
import { runCli } from './run.js';

// The README's example, byte for byte in substance.
const README_ROUTES = `import type { Router } from 'coap-psk-resolver';

export default function routes(router: Router) {
  router.get('/devices/:id/temp', { rt: 'temperature', ct: 0 }, (req, res) => {
    // req.identity: the serial that authenticated this DTLS session
    // req.keyLabel: the master key its PSK was derived from
    res.end(\`\${req.identity} asks for \${req.params.id}\`);
  });
}
`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-routes-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function folder(name: string, packageJson?: object): Promise<string> {
  const d = join(dir, name);
  await mkdir(d);
  if (packageJson) await writeFile(join(d, 'package.json'), JSON.stringify(packageJson));
  return d;
}

/** What the module mounts, recorded by a router that only takes note. */
async function mounted(file: string): Promise<string[]> {
  const mount = await loadRoutesModule(file);
  const paths: string[] = [];
  await mount({ get: (path: string) => paths.push(`GET ${path}`) } as never);
  return paths;
}

async function failure(file: string): Promise<string> {
  try {
    await loadRoutesModule(file);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('loaded');
}

describe('a routes module loads as the README shows it', () => {
  it.each([
    ['no package.json', undefined],
    ['npm init -y ("type": "commonjs")', { name: 'backend', version: '1.0.0', type: 'commonjs' }],
    ['"type": "module"', { name: 'backend', version: '1.0.0', type: 'module' }],
  ])('%s', async (name, pkg) => {
    const d = await folder(name.replace(/\W+/g, '-'), pkg);
    await writeFile(join(d, 'my-routes.ts'), README_ROUTES);
    expect(await mounted(join(d, 'my-routes.ts'))).toEqual(['GET /devices/:id/temp']);
  });

  it('JavaScript too: ESM .js without package.json, .mjs, CommonJS .cjs (module.exports = fn)', async () => {
    const d = await folder('js');
    await writeFile(join(d, 'a.js'), "export default function (router) { router.get('/a', {}, () => {}); }\n");
    await writeFile(join(d, 'b.mjs'), "export default (router) => router.get('/b', {}, () => {});\n");
    await writeFile(join(d, 'c.cjs'), "module.exports = function (router) { router.get('/c', {}, () => {}); };\n");
    expect(await mounted(join(d, 'a.js'))).toEqual(['GET /a']);
    expect(await mounted(join(d, 'b.mjs'))).toEqual(['GET /b']);
    expect(await mounted(join(d, 'c.cjs'))).toEqual(['GET /c']);
  });
});

describe('each failure says what is wrong', () => {
  it('not found, syntax error with its line, no default export, a default that is not a function, a throw', async () => {
    const d = await folder('bad', { name: 'bad', version: '1.0.0', type: 'commonjs' });
    expect(await failure(join(d, 'missing.ts'))).toBe(`route file ${join(d, 'missing.ts')}: not found`);

    await writeFile(join(d, 'syntax.ts'), "export default function (router) {\n  router.get('/x', {}, (q, s) => s.end('x')\n}\n");
    expect(await failure(join(d, 'syntax.ts'))).toMatch(/: syntax error at line 3: Expected "\)" but found "}"$/);

    await writeFile(join(d, 'named.ts'), 'export function routes(router: unknown) {}\n');
    expect(await failure(join(d, 'named.ts'))).toMatch(/: has no default export \(it exports routes\); write export default function routes\(router\)/);

    await writeFile(join(d, 'object.ts'), 'export default { routes: 1 };\n');
    expect(await failure(join(d, 'object.ts'))).toMatch(/: the default export is object, not a function \(router\) => void/);

    await writeFile(join(d, 'throws.ts'), "throw new Error('no database');\nexport default function () {}\n");
    expect(await failure(join(d, 'throws.ts'))).toMatch(/: threw while loading: no database$/);
  });

  it('serve stops at start with that one line, before opening the token', async () => {
    const d = await folder('serve-bad');
    await writeFile(join(d, 'named.ts'), 'export const x = 1;\n');
    const r = await runCli(['serve', '--routes', join(d, 'named.ts'), '--port', '0'], { COAP_PSK_MASTER_KEY_HEX: MASTER_HEX });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^coap-psk: route file .*named\.ts: has no default export \(it exports x\)/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

it('end to end: serve --routes from a folder without package.json; coap-client gets the answer', async () => {
  const d = await folder('e2e');
  await writeFile(join(d, 'my-routes.ts'), README_ROUTES);
  const server = await startServerProcess({ COAP_PSK_MASTER_KEY_HEX: MASTER_HEX, COAP_PSK_KEY_ENCODING: 'hex' }, ['--routes', join(d, 'my-routes.ts')]);
  try {
    const r = await coapClient({ impl: 'openssl', identity: 'SN12345', key: VECTORS[0]!.psk, uri: `coaps://127.0.0.1:${server.port}/devices/7/temp` });
    expect(r.payload).toBe('SN12345 asks for 7');
  } finally {
    await server.stop();
  }
}, 60_000);
