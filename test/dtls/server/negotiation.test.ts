/** What the server picks from real clients' ClientHellos (captured in test/fixtures/flights). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SUITE_PREFERENCE } from '../../../src/dtls/ciphers/index.js';
import { AlertDescription, EMPTY_RENEGOTIATION_INFO_SCSV, ExtensionType, NamedGroup } from '../../../src/dtls/constants.js';
import { encodeRenegotiationInfo } from '../../../src/dtls/extensions.js';
import { parseClientHello, type ClientHello } from '../../../src/dtls/handshake/client-hello.js';
import { DEFAULT_GROUPS, isFailure, negotiate, type Negotiated, type NegotiationPolicy } from '../../../src/dtls/negotiation.js';
import { messageBody } from '../codecs/flights.js';

const POLICY: NegotiationPolicy = { cipherSuites: DEFAULT_SUITE_PREFERENCE, groups: DEFAULT_GROUPS, requireExtendedMasterSecret: false };

function hello(fixture: string): ClientHello {
  return parseClientHello(messageBody(fixture, 1))!;
}

function ok(n: ReturnType<typeof negotiate>): Negotiated {
  if (isFailure(n)) throw new Error(`negotiation failed: ${n.reason}`);
  return n;
}

const types = (n: Negotiated) => n.extensions.map((e) => e.type);

describe('negotiate', () => {
  it('gives coap-client-openssl ECDHE-PSK-CHACHA20 over x25519, with EMS and renegotiation_info', () => {
    const n = ok(negotiate(hello('coap-client-openssl-client-hello-cookie'), POLICY));
    expect(n.suite.name).toBe('TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256');
    expect(n.group).toBe(NamedGroup.x25519);
    expect(n.extendedMasterSecret).toBe(true);
    expect(types(n)).toContain(ExtensionType.renegotiation_info);
    expect(types(n)).toContain(ExtensionType.extended_master_secret);
    expect(types(n)).toContain(ExtensionType.ec_point_formats);
  });

  it('follows the server preference, not the client order', () => {
    const ch = hello('coap-client-openssl-client-hello-cookie');
    const n = ok(negotiate(ch, { ...POLICY, cipherSuites: [0xc0a8, 0xccac] }));
    expect(n.suite.name).toBe('TLS_PSK_WITH_AES_128_CCM_8');
    expect(n.group).toBeUndefined();
    expect(types(n)).not.toContain(ExtensionType.ec_point_formats);
  });

  it('picks CCM_8 for an s_client restricted to it', () => {
    expect(ok(negotiate(hello('openssl-psk-aes128-ccm8-client-hello-cookie'), POLICY)).suite.id).toBe(0xc0a8);
  });

  it('answers encrypt_then_mac only for the CBC suite', () => {
    const ch = hello('coap-client-openssl-client-hello-cookie');
    const withEtm: ClientHello = { ...ch, cipherSuites: [0x00ae], extensions: [...ch.extensions.filter((e) => e.type !== 22), { type: 22, data: Buffer.alloc(0) }] };
    const cbc = ok(negotiate(withEtm, POLICY));
    expect(cbc.encryptThenMac).toBe(true);
    expect(types(cbc)).toContain(ExtensionType.encrypt_then_mac);
    const aead = ok(negotiate({ ...withEtm, cipherSuites: [0xc0a8] }, POLICY));
    expect(aead.encryptThenMac).toBe(false);
  });

  it('gives the CBC suite only to a client offering encrypt_then_mac, unless allowed (Lucky 13)', () => {
    const ch = hello('coap-client-openssl-client-hello-cookie');
    const noEtm: ClientHello = { ...ch, cipherSuites: [0x00ae], extensions: ch.extensions.filter((e) => e.type !== 22) };
    const refused = negotiate(noEtm, POLICY);
    expect(isFailure(refused) && refused.reason).toBe('no_shared_cipher_suite');
    const allowed = ok(negotiate(noEtm, { ...POLICY, allowCbcWithoutEncryptThenMac: true }));
    expect(allowed.suite.id).toBe(0x00ae);
    expect(allowed.encryptThenMac).toBe(false);
  });

  it('skips ECDHE suites when no group is shared', () => {
    const ch = hello('coap-client-openssl-client-hello-cookie');
    const n = ok(negotiate(ch, { ...POLICY, groups: [] }));
    expect(n.suite.keyExchange).toBe('psk');
  });

  it('answers the SCSV with an empty renegotiation_info', () => {
    const ch = hello('openssl-psk-aes128-ccm8-client-hello-cookie');
    const bare: ClientHello = { ...ch, cipherSuites: [0xc0a8, EMPTY_RENEGOTIATION_INFO_SCSV], extensions: [] };
    const n = ok(negotiate(bare, POLICY));
    expect(n.extensions).toEqual([encodeRenegotiationInfo()]);
  });

  it.each<[string, (ch: ClientHello) => ClientHello, number]>([
    ['DTLS 1.0 only', (ch) => ({ ...ch, clientVersion: 0xfeff }), AlertDescription.protocol_version],
    ['no null compression', (ch) => ({ ...ch, compressionMethods: [1] }), AlertDescription.illegal_parameter],
    ['no suite in common', (ch) => ({ ...ch, cipherSuites: [0x002f] }), AlertDescription.handshake_failure],
    ['renegotiation_info not empty', (ch) => ({ ...ch, extensions: [encodeRenegotiationInfo(Buffer.alloc(12, 1))] }), AlertDescription.handshake_failure],
    ['EMS with data', (ch) => ({ ...ch, extensions: [{ type: 23, data: Buffer.from([0]) }] }), AlertDescription.decode_error],
  ])('refuses %s', (_name, change, alert) => {
    const n = negotiate(change(hello('openssl-psk-aes128-ccm8-client-hello-cookie')), POLICY);
    expect(isFailure(n) && n.alert).toBe(alert);
  });

  it('refuses a client without EMS when EMS is required', () => {
    const ch = hello('openssl-psk-aes128-ccm8-client-hello-cookie');
    const noEms = { ...ch, extensions: ch.extensions.filter((e) => e.type !== 23) };
    expect(isFailure(negotiate(noEms, { ...POLICY, requireExtendedMasterSecret: true }))).toBe(true);
  });
});
