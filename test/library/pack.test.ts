/**
 * The package as a backend team gets it: built (tsc → dist/ with .d.ts), packed with `npm pack`,
 * installed from the tarball into a fresh project (dependencies from the registry or npm's
 * cache), then imported by name: a script serves an Observe route on a real SoftHSM token and
 * libcoap's coap-client observes it; a TypeScript file using the API type-checks.
 *
 * Nothing is written into the working tree: the package is staged in a temporary directory.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { coapClient, runBounded } from '../helpers/peers.js';
import type { TestToken } from '../helpers/softhsm.js';
import { expectedHexKey, makeToken } from '../interop/fixture.js';
import { freeUdpPort } from '../helpers/ports.js';
import { MASTER_HEX, VECTORS } from '../keys/vectors.js';

const ROOT = resolve('.');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
let dir: string;
let token: TestToken;
let consumer: string;

async function run(cmd: string, args: string[], cwd: string, timeoutMs: number) {
  const res = await runBounded('bash', ['-c', `cd "$1" && shift && exec "$@"`, 'run', cwd, cmd, ...args], { timeoutMs });
  if (res.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.exitCode}${res.timedOut ? ', timed out' : ''}):\n${res.stdout}\n${res.stderr}`);
  return res;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coap-psk-pack-'));
  token = await makeToken('library-pack');
  // Stage the package: what `files` lists, plus a fresh dist/.
  const stage = join(dir, 'stage');
  await mkdir(stage);
  for (const entry of ['package.json', 'README.md', 'bin', 'src', 'examples', 'certs-none']) {
    if (existsSync(join(ROOT, entry))) await cp(join(ROOT, entry), join(stage, entry), { recursive: true });
  }
  await run(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], ROOT, 120_000);
  // dist/ is built just above; --ignore-scripts skips the prepack build, which needs the tsconfigs.
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--silent'], stage, 60_000);
  const tgz = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error('npm pack made no tarball');

  consumer = join(dir, 'consumer');
  await mkdir(consumer);
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'backend', private: true, type: 'module' }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tgz)], consumer, 240_000);
}, 420_000);

afterAll(async () => {
  await token?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('ships dist with JS and type declarations', () => {
  const pkg = join(consumer, 'node_modules/coap-psk-resolver');
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/server.d.ts', 'bin/coap-psk.js', 'package.json']) {
    expect(existsSync(join(pkg, f)), f).toBe(true);
  }
  expect(existsSync(join(pkg, 'test'))).toBe(false);
});

const APP = `
import { createServer, loadKeyConfig, openKeySource } from 'coap-psk-resolver';

const keys = await openKeySource(loadKeyConfig(process.env));
let n = 0;
const server = await createServer({
  keys,
  routes(router) {
    router.get('/counter', { obs: true, ct: 0 }, (req, res) => {
      if (!res.observing) return res.end(String(n));
      res.write(String(n));
      const timer = setInterval(() => res.write(String(++n)), 200);
      res.onClose(() => clearInterval(timer));
    });
    router.get('/hello', (req, res) => res.end('hello ' + req.serial));
  },
});
const { port } = await server.listen(0, '127.0.0.1');
console.log('PORT ' + port);
process.once('SIGTERM', () => server.close().then(() => process.exit(0)));
`;

it('serves an Observe route from a fresh project that imports the package by name', async () => {
  await writeFile(join(consumer, 'app.mjs'), APP);
  const child = spawn(process.execPath, ['app.mjs'], { cwd: consumer, env: { ...process.env, ...token.env, COAP_PSK_KEY_ENCODING: 'hex' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const hardKill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const port = await new Promise<number>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`app did not start: ${err}`)), 20_000);
      child.stdout.on('data', () => {
        const m = /PORT (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          ready(Number(m[1]));
        }
      });
      child.once('exit', (code) => fail(new Error(`app exited ${code}: ${err}`)));
    });
    const serial = 'SN-pack';
    const hello = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${port}/hello` });
    expect(hello.payload, hello.stderr).toBe(`hello ${serial}`);
    const observed = await coapClient({ impl: 'openssl', identity: serial, key: expectedHexKey(serial), uri: `coaps://127.0.0.1:${port}/counter`, extraArgs: ['-s', '2'], timeoutSec: 5 });
    expect([...(observed.stdout + observed.stderr).matchAll(/c:2\.05 .*Observe:/g)].length, observed.stderr).toBeGreaterThanOrEqual(3);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    clearTimeout(hardKill);
  }
});

it('type-checks a TypeScript consumer against the shipped declarations', async () => {
  await writeFile(join(consumer, 'check.ts'), `
import { createServer, Router, SoftwareResolver, type CoapPskServerOptions, type RouteRequest, type KeyResolver } from 'coap-psk-resolver';
const keys: KeyResolver = new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.alloc(16) }], warn: () => {} });
const options: CoapPskServerOptions = {
  keys,
  identity: { pattern: '^(?<tenant>[^/]+)/(?<serial>.+)$' },
  metrics: { port: 9464 },
  routes: (router: Router) => {
    router.get('/t/:id', { obs: true }, (req: RouteRequest, res) => res.end(req.identityParts.tenant + req.serial + req.params.id));
  },
};
export const server: Promise<unknown> = createServer(options);
`);
  await writeFile(join(consumer, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')] },
    files: ['check.ts'],
  }));
  await run(process.execPath, [TSC, '-p', 'tsconfig.json'], consumer, 120_000);
});

/** The README's library example, taken from README.md itself so that the test checks what it says. */
function readmeBlock(firstLine: string): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = readme.split('```').find((b) => b.replace(/^\w*\n/, '').startsWith(firstLine));
  if (!block) throw new Error(`README.md has no code block starting with ${firstLine}`);
  return block.replace(/^\w*\n/, '');
}

it("runs the README's library example as written in an `npm init -y` project, and from CommonJS through import()", async () => {
  // npm init -y: "type": "commonjs". The installed package is the consumer's, linked.
  const fresh = join(dir, 'fresh');
  await mkdir(fresh);
  await writeFile(join(fresh, 'package.json'), JSON.stringify({ name: 'fresh', version: '1.0.0', type: 'commonjs' }));
  await symlink(join(consumer, 'node_modules'), join(fresh, 'node_modules'));
  const esm = readmeBlock('// server.mjs');
  await writeFile(join(fresh, 'server.mjs'), esm);
  // The README's CommonJS advice: the same code inside an async function, the package through import().
  const body = esm.split('\n').filter((l) => !l.startsWith('import ') && !l.startsWith('//')).join('\n');
  await writeFile(join(fresh, 'server.cjs'), `(async () => {\nconst { createServer, loadKeyConfig, openKeySource } = await import('coap-psk-resolver');\n${body}\n})();\n`);

  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COAP_PSK_') && k !== 'SOFTHSM2_CONF'));
  Object.assign(env, { COAP_PSK_MASTER_KEY_HEX: MASTER_HEX, COAP_PSK_KEY_ENCODING: 'hex' });
  const key = await runBounded('bash', ['-c', 'cd "$1" && exec npx --no-install coap-psk derive --key-only SN12345', 'run', fresh], { timeoutMs: 60_000, env });
  expect(key.stdout, key.stderr).toBe(`${VECTORS[0]!.psk}\n`);

  for (const file of ['server.mjs', 'server.cjs']) {
    const port = await freeUdpPort();
    const child = spawn(process.execPath, [file], { cwd: fresh, env: { ...env, COAP_PSK_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      await new Promise<void>((ready, fail) => {
        const timer = setTimeout(() => fail(new Error(`${file} did not start: ${err}`)), 30_000);
        child.stdout.on('data', () => {
          if (!out.includes(`serving coaps://0.0.0.0:${port}`)) return;
          clearTimeout(timer);
          ready();
        });
        child.once('exit', (code) => fail(new Error(`${file} exited ${code}: ${err}`)));
      });
      const r = await coapClient({ impl: 'openssl', identity: 'SN12345', key: VECTORS[0]!.psk, uri: `coaps://127.0.0.1:${port}/devices/1/temp` });
      expect(r.payload, `${file}: ${r.stderr}`).toBe('21.5');
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
  }
}, 120_000);
