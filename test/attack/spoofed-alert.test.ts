/**
 * Issue 11, the worst defect: one unauthenticated 15-byte plaintext alert from the device's own
 * address and port ended its established session. Here the real server (createServer, SoftHSM
 * keys, the CoAP front) and this project's DTLS client on a real UDP socket: between two CoAP
 * requests the client's own socket sends the spoofed records (a fatal alert, close_notify, a
 * forged epoch-0 handshake record, a replayed ClientHello), and the next request on the same
 * session is still answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAlert } from '../../src/dtls/alert.js';
import { connectDtls } from '../../src/dtls/client.js';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, HandshakeType } from '../../src/dtls/constants.js';
import { encodeHandshake } from '../../src/dtls/handshake/header.js';
import { encodeRecord } from '../../src/dtls/record.js';
import { whoamiOver } from '../helpers/coap-bytes.js';
import { clientHelloBody } from '../helpers/dtls-raw.js';
import { devicePsk, sleep, startTarget, type AttackTarget } from './fixture.js';

let target: AttackTarget;

beforeAll(async () => {
  target = await startTarget({ label: 'attack-spoofed-alert' });
});

afterAll(async () => {
  await target?.close();
});

const whoami = whoamiOver;

const SPOOFED: Array<[string, Buffer]> = [
  ['a fatal plaintext alert (15 bytes)', encodeRecord(ContentType.alert, DTLS_1_2, 0, 77, encodeAlert(AlertLevel.fatal, AlertDescription.handshake_failure))],
  ['a plaintext close_notify', encodeRecord(ContentType.alert, DTLS_1_2, 0, 78, encodeAlert(AlertLevel.warning, AlertDescription.close_notify))],
  ['a forged epoch-0 Finished', encodeRecord(ContentType.handshake, DTLS_1_2, 0, 79, encodeHandshake(HandshakeType.finished, 2, Buffer.alloc(12)))],
  ['a ClientHello without a cookie', encodeRecord(ContentType.handshake, DTLS_1_2, 0, 80, encodeHandshake(HandshakeType.client_hello, 0, clientHelloBody()))],
];

describe('spoofed datagrams from the device address:port on a real socket', () => {
  it.each(SPOOFED)('%s between two requests: the next request on the same session is answered', async (_name, spoofed) => {
    const serial = 'SN-spoofed';
    const client = await connectDtls({ host: '127.0.0.1', port: target.port, identity: serial, psk: devicePsk(serial) });
    try {
      expect(await whoami(client, 1)).toBe(serial);
      const sessions = target.server.dtls.sessionCount;
      client.socket.send(spoofed);
      await sleep(100);
      expect(target.server.dtls.sessionCount).toBe(sessions);
      expect(client.session.state).toBe('established'); // the client ignores what the server says back in epoch 0
      expect(await whoami(client, 2)).toBe(serial);
    } finally {
      await client.close();
    }
  });
});

describe('the DTLS test client the same way (defect 1)', () => {
  it('a plaintext fatal alert "from the server" does not end an established client session', async () => {
    const serial = 'SN-client-side';
    const client = await connectDtls({ host: '127.0.0.1', port: target.port, identity: serial, psk: devicePsk(serial) });
    try {
      // What a spoofer with the server's address would send the device; fed as if it had arrived.
      client.session.onDatagram(encodeRecord(ContentType.alert, DTLS_1_2, 0, 500, encodeAlert(AlertLevel.fatal, AlertDescription.handshake_failure)));
      expect(client.session.state).toBe('established');
      expect(await whoami(client, 3)).toBe(serial);
    } finally {
      await client.close();
    }
  });
});
