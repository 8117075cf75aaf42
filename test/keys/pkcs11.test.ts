import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5Block } from '../../src/keys/derive.js';
import { masterKeyTemplate } from '../../src/keys/admin.js';
import { P11, acquireModule, findSecretKey, login, openSession, releaseModule, requireSlot } from '../../src/keys/p11.js';
import { Pkcs11Resolver } from '../../src/keys/pkcs11.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { type TestToken, createTestToken } from '../helpers/softhsm.js';
import { MASTER_HEX, OLD_MASTER_HEX, VECTORS } from './vectors.js';

const PIN = '246810';
let token: TestToken;

beforeAll(async () => {
  token = await createTestToken({
    label: 'keys-test',
    pin: PIN,
    keys: [
      { label: 'master-2025', hex: MASTER_HEX },
      { label: 'master-2024', hex: OLD_MASTER_HEX },
    ],
  });
  // SoftHSM reads this at C_Initialize; this file runs in its own process.
  process.env.SOFTHSM2_CONF = token.confPath;
});
afterAll(async () => token?.cleanup());

const open = (over: Partial<Parameters<typeof Pkcs11Resolver.open>[0]> = {}) =>
  Pkcs11Resolver.open({
    modulePath: token.modulePath, tokenLabel: 'keys-test', pin: PIN, keyLabels: ['master-2025'], log: () => {}, ...over,
  });

describe('Pkcs11Resolver on a real SoftHSM token', () => {
  it('derives the known answers inside the token (async and sync)', async () => {
    const r = await open();
    try {
      for (const v of VECTORS) {
        const got = await r.derive(md5Block(Buffer.from(v.serial, 'utf8')));
        expect(got?.toString('hex'), v.name).toBe(v.psk);
      }
      const sync = r.deriveSync(VECTORS.map((v) => Buffer.from(v.serial, 'utf8')));
      expect(sync.map((b) => b.toString('hex'))).toEqual(VECTORS.map((v) => v.psk));
    } finally {
      await r.close();
    }
  });

  it('resolve() returns raw or hex PSKs labelled with their master key', async () => {
    for (const encoding of ['raw', 'hex'] as const) {
      const r = await open({ encoding });
      const [c, ...rest] = await r.resolve(Buffer.from('SN12345'));
      expect(rest).toHaveLength(0);
      expect(c!.keyLabel).toBe('master-2025');
      const expected = Buffer.from(VECTORS[0]!.psk, 'hex');
      expect(c!.psk).toEqual(encoding === 'raw' ? expected : Buffer.from(VECTORS[0]!.psk, 'ascii'));
      await r.close();
    }
  });

  it('resolve() with syncDerivation gives the same candidates as the async path', async () => {
    const asyncR = await open({ keyLabels: ['master-2025', 'master-2024'] });
    const syncR = await open({ keyLabels: ['master-2025', 'master-2024'], syncDerivation: true });
    try {
      for (const v of VECTORS) {
        const id = Buffer.from(v.serial, 'utf8');
        expect(await syncR.resolve(id), v.name).toEqual(await asyncR.resolve(id));
      }
    } finally {
      await asyncR.close();
      await syncR.close();
    }
  });

  it('agrees with the software resolver, for both master keys, newest first', async () => {
    const hw = await open({ keyLabels: ['master-2025', 'master-2024'], encoding: 'hex' });
    const sw = new SoftwareResolver({
      keys: [
        { label: 'master-2025', master: Buffer.from(MASTER_HEX, 'hex') },
        { label: 'master-2024', master: Buffer.from(OLD_MASTER_HEX, 'hex') },
      ],
      encoding: 'hex',
      warn: () => {},
    });
    try {
      for (const serial of ['SN1', 'Gerät-7', 'x'.repeat(128), 'SN134535']) {
        const a = await hw.resolve(Buffer.from(serial));
        const b = await sw.resolve(Buffer.from(serial));
        expect(a.map((c) => c.keyLabel)).toEqual(['master-2025', 'master-2024']);
        expect(a).toEqual(b);
        expect(a[0]!.psk.equals(a[1]!.psk)).toBe(false);
      }
    } finally {
      await hw.close();
      await sw.close();
    }
  });

  it('answers unknown ([]) for empty and over-long identities without asking the token', async () => {
    const r = await open();
    expect(await r.resolve(Buffer.alloc(0))).toEqual([]);
    expect(await r.resolve(Buffer.alloc(129, 0x53))).toEqual([]);
    await r.close();
  });

  it('serves many concurrent resolves through the session pool', async () => {
    const r = await open({ poolSize: 3 });
    const serials = Array.from({ length: 200 }, (_, i) => `SN${i}`);
    const sw = new SoftwareResolver({ keys: [{ label: 'master-2025', master: Buffer.from(MASTER_HEX, 'hex') }], warn: () => {} });
    const got = await Promise.all(serials.map((s) => r.resolve(Buffer.from(s))));
    const want = await Promise.all(serials.map((s) => sw.resolve(Buffer.from(s))));
    expect(got).toEqual(want);
    await r.close();
    await sw.close();
  });

  it('logs in again after its sessions are closed underneath it', async () => {
    const lines: string[] = [];
    const r = await open({ log: (l) => lines.push(l), backoffMs: { initial: 5, max: 20 } });
    try {
      await r.resolve(Buffer.from('SN12345'));
      // Another user of the same module closes every session of the token: our handles die.
      const p11 = acquireModule(token.modulePath);
      p11.C_CloseAllSessions(requireSlot(p11, 'keys-test'));
      releaseModule(token.modulePath);
      const results = await Promise.all([1, 2, 3].map(() => r.resolve(Buffer.from('SN12345'))));
      for (const [c] of results) expect(c!.psk.toString('hex')).toBe(VECTORS[0]!.psk);
      expect(lines.some((l) => l.includes('CKR_SESSION_HANDLE_INVALID'))).toBe(true);
      expect(lines.filter((l) => l.includes('session restored'))).toHaveLength(1);
      // The sync path recovers too.
      p11.C_CloseAllSessions(requireSlot(p11, 'keys-test'));
      expect(r.deriveSync([Buffer.from('SN134535')])[0]!.toString('hex')).toBe(VECTORS[1]!.psk);
    } finally {
      await r.close();
    }
  });

  it('deriveSync falls back to one-shot CBC when the key is not allowed ECB', async () => {
    // A key restricted to CKM_AES_CBC (CKA_ALLOWED_MECHANISMS): the open ECB stream that
    // deriveSync prefers is refused, and the answers must not change.
    const p11 = acquireModule(token.modulePath);
    try {
      const session = openSession(p11, requireSlot(p11, 'keys-test'), true);
      login(p11, session, PIN);
      const onlyCbc = Buffer.alloc(8);
      onlyCbc.writeBigUInt64LE(BigInt(P11.CKM_AES_CBC));
      p11.C_CreateObject(session, [
        ...masterKeyTemplate('cbc-only'),
        { type: P11.CKA_ALLOWED_MECHANISMS, value: onlyCbc },
        { type: P11.CKA_VALUE, value: Buffer.from(MASTER_HEX, 'hex') },
      ]);
      const key = findSecretKey(p11, session, 'cbc-only')!;
      expect(() => p11.C_EncryptInit(session, { mechanism: P11.CKM_AES_ECB }, key)).toThrow();
      p11.C_CloseSession(session);
    } finally {
      releaseModule(token.modulePath);
    }
    const r = await open({ keyLabels: ['cbc-only'] });
    try {
      const sync = r.deriveSync(VECTORS.map((v) => Buffer.from(v.serial, 'utf8')));
      expect(sync.map((b) => b.toString('hex'))).toEqual(VECTORS.map((v) => v.psk));
    } finally {
      await r.close();
    }
  });

  describe('start-up errors are one clear line', () => {
    it('wrong PIN', async () => {
      await expect(open({ pin: '000000' })).rejects.toThrow(/^PKCS#11 login failed: PIN incorrect$/);
    });
    it('missing key label (any in the rotation list)', async () => {
      await expect(open({ keyLabels: ['master-2025', 'nope'] })).rejects.toThrow(/^PKCS#11 key not found: label nope$/);
    });
    it('missing token', async () => {
      await expect(open({ tokenLabel: 'no-such-token' })).rejects.toThrow(/^PKCS#11 token not found: label no-such-token$/);
    });
    it('missing module', async () => {
      await expect(open({ modulePath: '/nonexistent/libpkcs11.so' })).rejects.toThrow(
        /^PKCS#11 module could not be loaded: \/nonexistent\/libpkcs11.so$/,
      );
    });
    it('never puts the PIN in the message', async () => {
      const err = await open({ pin: 'secret-pin-123' }).catch((e: Error) => e);
      expect(String(err)).not.toContain('secret-pin-123');
    });
  });
});
