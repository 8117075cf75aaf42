/**
 * Graceful shutdown: close() stops new handshakes, answers the requests already received (a
 * slow handler here), then sends close_notify to every session. In process, on loopback, with
 * this project's DTLS client and a real software derivation.
 */
import { expect, it } from 'vitest';
import { connectDtls, DtlsClientError } from '../../src/dtls/client.js';
import { deriveSoftware } from '../../src/keys/derive.js';
import { SoftwareResolver } from '../../src/keys/software.js';
import { createServer } from '../../src/server.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';

const MASTER = Buffer.from('00112233445566778899aabbccddeeff', 'hex'); // test key only

it('answers a request already received, then sends close_notify, and takes no new handshake', async () => {
  let handlerStarted!: () => void;
  const started = new Promise<void>((r) => (handlerStarted = r));
  const server = await createServer({
    keys: new SoftwareResolver({ keys: [{ label: 'k', master: Buffer.from(MASTER) }], encoding: 'raw', warn: () => {} }),
    routes: (router) => {
      router.get('/slow', async (req, res) => {
        handlerStarted();
        await new Promise((r) => setTimeout(r, 400));
        res.end(`done for ${req.identity}`);
      });
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  const serial = 'SN-shutdown';
  const client = await connectDtls({ host: '127.0.0.1', port, identity: serial, psk: deriveSoftware(MASTER, Buffer.from(serial)) });
  const events: string[] = [];
  const replies: string[] = [];
  client.session.on('data', (d: Buffer) => {
    const r = parseReply(d);
    // node-coap first sends an empty ACK when the handler is slow, then the answer (a CON).
    if (r && r.payload.length > 0) {
      replies.push(r.payload.toString());
      events.push('reply');
    }
  });
  const closedBy = new Promise<string>((r) => client.session.once('close', (reason: string) => {
    events.push('close');
    r(reason);
  }));

  client.send(coapGet(0x2001, ['slow']));
  await started;
  const closing = server.close();
  // A device that tries to connect now is not served.
  const late = await connectDtls({ host: '127.0.0.1', port, identity: 'SN-late', psk: deriveSoftware(MASTER, Buffer.from('SN-late')), timeoutMs: 1500, retransmit: { initialMs: 300, maxMs: 300, maxRetransmits: 2 } }).catch((e: unknown) => e);
  expect(late).toBeInstanceOf(DtlsClientError);
  await closing;

  expect(await closedBy).toMatch(/close_notify/);
  expect(replies).toEqual([`done for ${serial}`]);
  expect(events).toEqual(['reply', 'close']);
  await client.close();
});
