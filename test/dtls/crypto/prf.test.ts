import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  computeExtendedMasterSecret,
  computeMasterSecret,
  computeVerifyData,
  deriveKeyBlock,
  prf,
  pSha256,
} from '../../../src/dtls/prf.js';
import type { CipherSuite } from '../../../src/dtls/ciphers/types.js';
import { TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM_8 } from '../../../src/dtls/ciphers/index.js';
import { hex } from './hex.js';

describe('TLS 1.2 PRF (RFC 5246 section 5)', () => {
  // The P_SHA256 known answer posted to the IETF TLS WG list
  // (https://www.ietf.org/mail-archive/web/tls/current/msg03416.html), used by BearSSL among others.
  const secret = hex('9bbe436ba940f017b17652849a71db35');
  const seed = hex('a0ba9f936cda311827a6f796ffd5198c');
  const expected = hex(`
    e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a
    6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab
    4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
    87347b66`);

  it('matches the published 100-byte vector', () => {
    expect(prf(secret, 'test label', seed, 100).toString('hex')).toBe(expected.toString('hex'));
  });

  it('is P_SHA256 over label ‖ seed, and every prefix length is a prefix of the output', () => {
    const labelSeed = Buffer.concat([Buffer.from('test label', 'ascii'), seed]);
    expect(pSha256(secret, labelSeed, 100)).toEqual(expected);
    for (const length of [0, 1, 12, 31, 32, 33, 48, 64, 99]) {
      expect(pSha256(secret, labelSeed, length)).toEqual(expected.subarray(0, length));
    }
  });
});

describe('master secret and key block', () => {
  // "The Illustrated TLS 1.2 Connection", https://tls12.xargs.org/#client-encryption-keys-calculation
  // (ECDHE-RSA-AES128-SHA with the SHA-256 PRF: MAC keys 20 bytes, keys 16, IVs 16).
  const premaster = hex('df4a291baa1eb7cfa6934b29b474baad2697e29f1f920dcc77c8a0a088447624');
  const clientRandom = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const serverRandom = hex('707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f');
  const master = hex(
    '916abf9da55973e13614ae0a3f5d3f37b023ba129aee02cc9134338127cd7049781c8e19fc1eb2a7387ac06ae237344c',
  );

  it('computes the master secret of the published trace', () => {
    expect(computeMasterSecret(premaster, clientRandom, serverRandom)).toEqual(master);
  });

  it('cuts the key block in RFC 5246 6.3 order (server_random ‖ client_random seed)', () => {
    const shaped = { ...TLS_PSK_WITH_AES_128_CBC_SHA256, macKeyLength: 20, encKeyLength: 16, fixedIvLength: 16 };
    const { client, server } = deriveKeyBlock(master, clientRandom, serverRandom, shaped as CipherSuite);
    expect(client.macKey.toString('hex')).toBe('1b7d117c7d5f690bc263cae8ef60af0f1878acc2');
    expect(server.macKey.toString('hex')).toBe('2ad8bdd8c601a617126f63540eb20906f781fad2');
    expect(client.encKey.toString('hex')).toBe('f656d037b173ef3e11169f27231a84b6');
    expect(server.encKey.toString('hex')).toBe('752a18e7a9fcb7cbcdd8f98dd8f769eb');
    expect(client.fixedIv.toString('hex')).toBe('a0d2550c9238eebfef5c32251abb67d6');
    expect(server.fixedIv.toString('hex')).toBe('434528db4937d540d393135e06a11bb8');
  });

  it('gives AEAD suites empty MAC keys and the suite lengths', () => {
    const { client, server } = deriveKeyBlock(master, clientRandom, serverRandom, TLS_PSK_WITH_AES_128_CCM_8);
    const block = prf(master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), 40);
    expect(client.macKey.length).toBe(0);
    expect(server.macKey.length).toBe(0);
    expect(client.encKey).toEqual(block.subarray(0, 16));
    expect(server.encKey).toEqual(block.subarray(16, 32));
    expect(client.fixedIv).toEqual(block.subarray(32, 36));
    expect(server.fixedIv).toEqual(block.subarray(36, 40));
  });

  it('computes the client Finished of the published trace', () => {
    // Same trace: SHA-256 of the handshake messages up to ClientKeyExchange, and the
    // verify_data in the client's Finished message (14 00 00 0c cf 91 96 ...).
    const handshakeHash = hex('061dda04b3c2217ff73bd79b9cf88a2bb6ec505404aac8722db03ef417b54cb4');
    expect(computeVerifyData(master, 'client finished', handshakeHash).toString('hex')).toBe(
      'cf919626f1360c536aaad73a',
    );
  });

  it('derives the extended master secret from the session hash (RFC 7627 section 4)', () => {
    const sessionHash = createHash('sha256').update('handshake messages').digest();
    const ems = computeExtendedMasterSecret(premaster, sessionHash);
    expect(ems).toEqual(prf(premaster, 'extended master secret', sessionHash, 48));
    expect(ems).not.toEqual(computeMasterSecret(premaster, clientRandom, serverRandom));
  });

  it('labels client and server Finished differently', () => {
    const hash = Buffer.alloc(32, 7);
    const client = computeVerifyData(master, 'client finished', hash);
    const server = computeVerifyData(master, 'server finished', hash);
    expect(client.length).toBe(12);
    expect(server).toEqual(prf(master, 'server finished', hash, 12));
    expect(client).not.toEqual(server);
  });
});
