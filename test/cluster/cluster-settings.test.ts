/**
 * The cluster settings' values (src/cluster/cluster-settings.ts): the forms docs/cluster.md and
 * issue 15 give, and the mistakes an operator makes, each with its sentence.
 */
import { describe, expect, it } from 'vitest';
import { nodeIdFromHostname, parseClusterKey, parseClusterPeers, parseNodeId } from '../../src/cluster/cluster-settings.js';

describe('--cluster-peers id=host:port,...', () => {
  it('takes IPv4 addresses, bracketed IPv6 addresses and host names', () => {
    expect(parseClusterPeers('0=10.0.0.5:5685, 1=[fd00::1]:5685,2=coap-psk-2.coap-psk-nodes.default.svc.cluster.local:5685')).toEqual({
      ok: true,
      value: [
        { nodeId: 0, host: '10.0.0.5', port: 5685 },
        { nodeId: 1, host: 'fd00::1', port: 5685 },
        { nodeId: 2, host: 'coap-psk-2.coap-psk-nodes.default.svc.cluster.local', port: 5685 },
      ],
    });
  });

  it.each([
    ['0=10.0.0.5', 'entry 1 "0=10.0.0.5": expected id=host:port (an IPv6 address in brackets)'],
    ['0=fd00::1:5685', 'entry 1 "0=fd00::1:5685": expected id=host:port (an IPv6 address in brackets)'],
    ['1024=10.0.0.5:5685', 'entry 1 "1024=10.0.0.5:5685": node id must be 0..1023'],
    ['0=10.0.0.5:5685,0=10.0.0.6:5685', 'entry 2 "0=10.0.0.6:5685": node id 0 listed twice'],
    ['0=10.0.0.5:0', 'entry 1 "0=10.0.0.5:0": port must be 1..65535'],
    ['0=10.0.0.5:65536', 'entry 1 "0=10.0.0.5:65536": port must be 1..65535'],
    ['0=10.0.0.256:5685', 'entry 1 "0=10.0.0.256:5685": not an IP address or host name'],
    ['0=[10.0.0.1]:5685', 'entry 1 "0=[10.0.0.1]:5685": not an IP address or host name'],
    ['0=-bad-.example:5685', 'entry 1 "0=-bad-.example:5685": not an IP address or host name'],
    ['', 'entry 1 "": expected id=host:port (an IPv6 address in brackets)'],
  ])('refuses %j', (text, error) => {
    expect(parseClusterPeers(text)).toEqual({ ok: false, error });
  });
});

describe('node id', () => {
  it('from --node-id: 0..1023', () => {
    expect(parseNodeId('0')).toBe(0);
    expect(parseNodeId('1023')).toBe(1023);
    expect(parseNodeId('1024')).toBeUndefined();
    expect(parseNodeId('-1')).toBeUndefined();
    expect(parseNodeId('1e2')).toBeUndefined();
  });

  it("from a StatefulSet pod's hostname ordinal", () => {
    expect(nodeIdFromHostname('coap-psk-0')).toBe(0);
    expect(nodeIdFromHostname('coap-psk-17.coap-psk-nodes.default.svc.cluster.local')).toBe(17);
    expect(nodeIdFromHostname('coap-psk-2048')).toBeUndefined();
    expect(nodeIdFromHostname('coap-psk-7d9f8b6c4-x2x9z')).toBeUndefined(); // a Deployment's pod: no ordinal
    expect(nodeIdFromHostname('laptop')).toBeUndefined();
  });
});

describe('--cluster-key-file', () => {
  it('takes 32 or more raw bytes, or 64 or more hex digits', () => {
    const raw = Buffer.alloc(32, 0xa5);
    expect(parseClusterKey(raw)).toEqual({ ok: true, value: raw });
    const hex = `${'0f'.repeat(32)}\n`;
    expect(parseClusterKey(Buffer.from(hex))).toEqual({ ok: true, value: Buffer.alloc(32, 0x0f) });
  });

  it('refuses a short key without quoting it', () => {
    const res = parseClusterKey(Buffer.from('secret-but-short'));
    expect(res).toEqual({ ok: false, error: 'must hold at least 32 random bytes (or 64 hex digits)' });
  });
});
