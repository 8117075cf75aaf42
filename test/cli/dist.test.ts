/**
 * The command runs compiled JavaScript when the build is up to date (issue 16, item 12), and
 * src/ through tsx when it is not, so a stale build never runs. Staged in a temporary copy of
 * the package (bin, src, the tsconfigs; node_modules linked): this worktree's own dist/ is
 * left alone, since other tests run the binary meanwhile. Start-up time is measured by hand
 * (README), not here: timed tests are flaky on a shared machine.
 */
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm, symlink, utimes } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestToken, createTestToken } from '../helpers/softhsm.js';
import { MASTER_HEX, VECTORS } from '../keys/vectors.js';

const ROOT = resolve('.');
let stage: string;
let token: TestToken;

beforeAll(async () => {
  token = await createTestToken({ label: 'dist-test', pin: '5555', keys: [{ label: 'k1', hex: MASTER_HEX }] });
  stage = await mkdtemp(join(tmpdir(), 'coap-psk-dist-'));
  for (const entry of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'bin', 'src']) await cp(join(ROOT, entry), join(stage, entry), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(stage, 'node_modules'));
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(stage, 'tsconfig.build.json')], { encoding: 'utf8', timeout: 180_000 });
  if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
}, 240_000);
afterAll(async () => {
  await token?.cleanup();
  if (stage) await rm(stage, { recursive: true, force: true });
});

function run(args: string[]) {
  return spawnSync(process.execPath, [join(stage, 'bin/coap-psk.js'), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...token.env, COAP_PSK_DEBUG: '1' },
  });
}

it('npm run build compiles src/ to dist/ (JavaScript and declarations)', () => {
  for (const f of ['dist/cli/main.js', 'dist/cli/derive.js', 'dist/index.js', 'dist/index.d.ts']) expect(existsSync(join(stage, f)), f).toBe(true);
});

it('bin/coap-psk.js runs dist/ when it is up to date, with the same answers', () => {
  const r = run(['derive', 'SN12345']);
  expect(r.stderr).toBe('coap-psk: running dist/ (compiled)\n');
  expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\n`);
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  expect(run(['--version']).stdout).toBe(`${version}\n`);
});

it('a file of src/ newer than the build: src/ through tsx, never the stale build', async () => {
  const later = new Date(Date.now() + 60_000);
  await utimes(join(stage, 'src/errors.ts'), later, later);
  const r = run(['derive', 'SN12345']);
  expect(r.stderr).toBe('coap-psk: running src/ through tsx (dist/ older than src/)\n');
  expect(r.stdout).toBe(`SN12345 ${VECTORS[0]!.psk}\n`);
});
