import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DenyListResolver, parseDenyList } from '../../src/keys/deny-list.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { UserError } from '../../src/errors.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deny-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const inner = () => new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} });

describe('DenyListResolver', () => {
  it('parses serials, skipping blanks and comments, with CRLF and spaces around', () => {
    const set = parseDenyList(Buffer.from('# stolen\r\nSN1\r\n\n  SN2  \n#SN3\nSNé'));
    expect([...set].map((h) => Buffer.from(h, 'hex').toString())).toEqual(['SN1', 'SN2', 'SNé']);
  });

  it('refuses denied serials, serves the others, and picks up changes on reload', async () => {
    const file = join(dir, 'deny.txt');
    await writeFile(file, 'SN-stolen\n');
    const r = await DenyListResolver.open(inner(), file);
    expect(await r.resolve(Buffer.from('SN-stolen'))).toEqual([]);
    const ok = await r.resolve(Buffer.from('SN12345'));
    expect(ok[0].psk.toString('hex')).toBe('612b3b3f59f516b24a2c831168f701ea');

    await writeFile(file, 'SN12345\n');
    expect(await r.reload()).toBe(1);
    expect(await r.resolve(Buffer.from('SN12345'))).toEqual([]);
    expect(await r.resolve(Buffer.from('SN-stolen'))).toHaveLength(1);
    await r.close();
  });

  it('keeps the previous list when a reload cannot read the file', async () => {
    const file = join(dir, 'deny2.txt');
    await writeFile(file, 'SN-stolen\n');
    const r = await DenyListResolver.open(inner(), file);
    await rm(file);
    await expect(r.reload()).rejects.toThrow();
    expect(await r.resolve(Buffer.from('SN-stolen'))).toEqual([]);
    await r.close();
  });

  it('fails the start with one line when the file is missing', async () => {
    await expect(DenyListResolver.open(inner(), join(dir, 'nope'))).rejects.toThrow(new UserError(`COAP_PSK_DENY_LIST cannot be read: ${join(dir, 'nope')} (ENOENT)`));
  });
});
