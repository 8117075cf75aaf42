/**
 * The DTLS server alone (no CoAP), in process on 127.0.0.1, with the software key resolver
 * under a test master key, for the session and CID tests.
 */
import { DtlsServer, type DtlsServerOptions } from '../../src/dtls/server.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { pskLookupFromResolver } from '../../src/psk-lookup.js';

export const TEST_MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only

/** The PSK of `serial` under TEST_MASTER. */
export function testPsk(serial: string): Buffer {
  return deriveSoftware(TEST_MASTER, Buffer.from(serial));
}

/** A listening server; `cleanups` gets its close(). */
export async function startSoftwareDtlsServer(cleanups: Array<() => Promise<void> | void>, options: Partial<DtlsServerOptions> = {}): Promise<{ server: DtlsServer; port: number }> {
  const resolver = new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(TEST_MASTER) }], encoding: 'raw', warn: () => {} });
  const server = new DtlsServer({ pskLookup: pskLookupFromResolver(resolver), ...options });
  cleanups.push(() => server.close());
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}
