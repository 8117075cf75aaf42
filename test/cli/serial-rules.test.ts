/**
 * The server takes as a PSK identity what `derive` takes as a serial (issue 16, item 5), so no
 * device can hold a key for an identity the server refuses, and the server asks the HSM about
 * nothing derive would refuse. The expected keys are computed by the openssl command line
 * (recipe in test/keys/vectors.ts), never by the code under test.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareResolver } from '../../src/keys/software.js';
import { serialProblem } from '../../src/keys/serial.js';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.js';
import { sClient } from '../helpers/peers.js';
import { MASTER_HEX } from '../keys/vectors.js';

function opensslKey(serial: Buffer): string {
  const md5 = spawnSync('openssl', ['md5', '-binary'], { input: serial });
  const enc = spawnSync('openssl', ['enc', '-aes-128-ecb', '-nopad', '-K', MASTER_HEX], { input: md5.stdout });
  return enc.stdout.toString('hex');
}

const REFUSED: [string, Buffer][] = [
  ['invalid UTF-8', Buffer.from([0x53, 0x4e, 0xff, 0xfe, 0x42])],
  ['overlong UTF-8', Buffer.from([0x53, 0x4e, 0xc0, 0xaf, 0x42])],
  ['NUL', Buffer.from('SN\u0000B')],
  ['ESC', Buffer.from('SN\u001bB')],
  ['C1', Buffer.from('SN\u0085B')],
  ['blank', Buffer.from('   ')],
  ['129 bytes', Buffer.alloc(129, 0x53)],
];

describe('one rule for derive and the server', () => {
  it('the key resolver refuses what derive refuses, and takes what derive only warns about', async () => {
    const resolver = new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(MASTER_HEX, 'hex') }], warn: () => {} });
    try {
      for (const [name, identity] of REFUSED) {
        expect(serialProblem(identity), name).toBeDefined();
        expect(await resolver.resolve(identity), name).toEqual([]);
      }
      for (const ok of ['SN2 ', 'Gera\u0308t', 'Gerät-ÄÖÜ-€-日本']) {
        const [candidate] = await resolver.resolve(Buffer.from(ok));
        expect(candidate?.psk.toString('hex'), ok).toBe(opensslKey(Buffer.from(ok)));
      }
    } finally {
      await resolver.close();
    }
  });
});

describe('the running server', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess({ COAP_PSK_MASTER_KEY_HEX: MASTER_HEX, COAP_PSK_KEY_ENCODING: 'raw' });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('refuses an identity with a control character even with its right key; takes "SN2 " with its own', async () => {
    const esc = 'SN\u001bB';
    const refused = await sClient({ port: server.port, identity: esc, pskHex: opensslKey(Buffer.from(esc)), cipher: 'PSK-AES128-CCM8' });
    expect(refused.handshakeOk).toBe(false);
    const spaced = await sClient({ port: server.port, identity: 'SN2 ', pskHex: opensslKey(Buffer.from('SN2 ')), cipher: 'PSK-AES128-CCM8' });
    expect(spaced.handshakeOk, spaced.stderr).toBe(true);
  }, 60_000);
});
