/**
 * Devices in a network namespace: a child process (started with `ip netns exec`) that holds
 * DTLS sessions of this project's client, each on a UDP socket of its own (one device, one
 * source port), and obeys JSON lines on stdin:
 *
 *   {"seq":1,"op":"connect","device":"d1","identity":"SN1","psk":"<hex>","host":"…","port":5684,"cid":true}
 *       (cid: offer RFC 9146 Connection IDs, an empty one of ours: the server's CID in our records)
 *   {"seq":2,"op":"get","device":"d1","path":["whoami"]}
 *   {"seq":3,"op":"rebind","device":"d1"}      the session goes on from a new source port (a NAT rebinding)
 *   {"seq":4,"op":"close","device":"d1"}
 *
 * and answers each with one line {"seq":1,"ok":true,...} or {"seq":1,"ok":false,"error":"…"}; a get's
 * answer says where the datagram that carried the reply came from ("from": "address:port").
 * The keys it gets are test keys. It exits when stdin closes, and after LIFE_MS in any case.
 */
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { DtlsClientSession } from '../../src/dtls/client.js';
import { coapGet, parseReply } from '../helpers/coap-bytes.js';

const LIFE_MS = 150_000;
const HANDSHAKE_TIMEOUT_MS = 6000;
const GET_TIMEOUT_MS = 2000;

interface Device {
  socket: dgram.Socket;
  session: DtlsClientSession;
  host: string;
  port: number;
  closedReason?: string;
  /** Source of the datagram being read. */
  from?: string;
  pending?: { messageId: number; done: (reply: Record<string, unknown>) => void };
}

const devices = new Map<string, Device>();
let nextMessageId = 1;

function openSocket(device: Pick<Device, 'session'> & Partial<Device>): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    device.from = `${rinfo.address}:${rinfo.port}`;
    device.session.onDatagram(msg);
  });
  socket.on('error', () => {}); // ICMP errors: the timeouts below decide
  return new Promise((ready) => socket.bind(0, () => ready(socket)));
}

async function connect(name: string, identity: string, psk: Buffer, host: string, port: number, cid: boolean): Promise<Record<string, unknown>> {
  const device = { host, port } as Device;
  device.session = new DtlsClientSession(
    { identity, psk, retransmit: { initialMs: 500, maxMs: 2000, maxRetransmits: 4 }, ...(cid ? { connectionId: Buffer.alloc(0) } : {}) },
    (d) => device.socket.send(d, device.port, device.host),
  );
  device.socket = await openSocket(device);
  device.session.on('error', () => {});
  device.session.on('close', (reason: string) => {
    device.closedReason = reason;
    device.pending?.done({ ok: false, error: `closed: ${reason}` });
  });
  device.session.on('data', (d: Buffer) => {
    const reply = parseReply(d);
    if (reply && device.pending && reply.messageId === device.pending.messageId) {
      device.pending.done({ ok: true, code: reply.code, payload: reply.payload.toString('utf8'), from: device.from });
    }
  });
  const outcome = await new Promise<Record<string, unknown>>((done) => {
    const timer = setTimeout(() => done({ ok: false, error: 'handshake timeout' }), HANDSHAKE_TIMEOUT_MS);
    device.session.once('established', () => {
      clearTimeout(timer);
      done({ ok: true, localPort: device.socket.address().port });
    });
    device.session.once('close', (reason: string) => {
      clearTimeout(timer);
      done({ ok: false, error: reason });
    });
    device.session.start();
  });
  if (outcome.ok) devices.set(name, device);
  else dispose(device);
  return outcome;
}

function get(device: Device, path: string[]): Promise<Record<string, unknown>> {
  if (device.closedReason) return Promise.resolve({ ok: false, error: `closed: ${device.closedReason}` });
  const messageId = nextMessageId++ & 0xffff;
  return new Promise((done) => {
    const timer = setTimeout(() => finish({ ok: false, error: 'timeout' }), GET_TIMEOUT_MS);
    const finish = (reply: Record<string, unknown>) => {
      clearTimeout(timer);
      device.pending = undefined;
      done(reply);
    };
    device.pending = { messageId, done: finish };
    device.session.send(coapGet(messageId, path));
  });
}

async function rebind(device: Device): Promise<Record<string, unknown>> {
  const old = device.socket;
  device.socket = await openSocket(device);
  old.close();
  return { ok: true, localPort: device.socket.address().port };
}

function dispose(device: Device): void {
  if (!device.session.isClosed()) device.session.close(true);
  try {
    device.socket.close();
  } catch {
    // already closed
  }
}

async function handle(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
  const name = String(cmd.device);
  if (cmd.op === 'connect') {
    const old = devices.get(name);
    if (old) dispose(old);
    devices.delete(name);
    return connect(name, String(cmd.identity), Buffer.from(String(cmd.psk), 'hex'), String(cmd.host), Number(cmd.port), cmd.cid === true);
  }
  const device = devices.get(name);
  if (!device) return { ok: false, error: `no device ${name}` };
  if (cmd.op === 'get') return get(device, cmd.path as string[]);
  if (cmd.op === 'rebind') return rebind(device);
  if (cmd.op === 'close') {
    dispose(device);
    devices.delete(name);
    return { ok: true };
  }
  return { ok: false, error: `unknown op ${String(cmd.op)}` };
}

const life = setTimeout(() => process.exit(2), LIFE_MS);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = JSON.parse(line) as Record<string, unknown>;
  void handle(cmd).then((reply) => process.stdout.write(`${JSON.stringify({ seq: cmd.seq, ...reply })}\n`));
});
lines.on('close', () => {
  devices.forEach(dispose);
  clearTimeout(life);
  setTimeout(() => process.exit(0), 100);
});
