/**
 * A hand-driven DTLS 1.2 PSK client for attack and fuzz tests: it builds every record itself
 * (with the src/dtls codecs and key schedule) so a test can stop anywhere in the handshake,
 * send a malformed or forged message in place of the right one, or finish it properly as a
 * control. One cipher suite, TLS_PSK_WITH_AES_128_CCM_8, no extensions: the smallest handshake.
 *
 * Transport-agnostic: the session turns bytes into bytes; RawUdpPeer carries them over a real
 * socket on 127.0.0.1, or a test hands them to DtlsServer.onDatagram directly.
 */
import dgram from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';
import { CIPHER_SUITES } from '../../src/dtls/ciphers/index.js';
import type { RecordProtection } from '../../src/dtls/ciphers/types.js';
import { ContentType, DTLS_1_0, DTLS_1_2, ExtensionType, HandshakeType } from '../../src/dtls/constants.js';
import { type Extension, encodeFlagExtension, findExtension } from '../../src/dtls/extensions.js';
import { encodeClientHello } from '../../src/dtls/handshake/client-hello.js';
import { encodeClientKeyExchangePsk } from '../../src/dtls/handshake/client-key-exchange.js';
import { encodeFinished } from '../../src/dtls/handshake/finished.js';
import { encodeHandshake, parseHandshakeFragments, writeHandshakeHeader } from '../../src/dtls/handshake/header.js';
import { parseHelloVerifyRequest } from '../../src/dtls/handshake/hello-verify-request.js';
import { parseServerHello } from '../../src/dtls/handshake/server-hello.js';
import { pskPremaster } from '../../src/dtls/premaster.js';
import { computeExtendedMasterSecret, computeMasterSecret, computeVerifyData, deriveKeyBlock } from '../../src/dtls/prf.js';
import { encodeRecord, parseRecords } from '../../src/dtls/record.js';

export const LOOPBACK = '127.0.0.1';
export const CCM_8 = CIPHER_SUITES.get(0xc0a8)!;
/** The extended_master_secret extension (RFC 7627): only sessions with it are resumed. */
export const EMS = encodeFlagExtension(ExtensionType.extended_master_secret);

export interface HelloOptions {
  random?: Buffer;
  cookie?: Buffer;
  sessionId?: Buffer;
  cipherSuites?: number[];
  extensions?: Extension[];
  clientVersion?: number;
}

export function clientHelloBody(o: HelloOptions = {}): Buffer {
  return encodeClientHello({
    clientVersion: o.clientVersion ?? DTLS_1_2,
    random: o.random ?? randomBytes(32),
    sessionId: o.sessionId ?? Buffer.alloc(0),
    cookie: o.cookie ?? Buffer.alloc(0),
    cipherSuites: o.cipherSuites ?? [CCM_8.id],
    compressionMethods: [0],
    extensions: o.extensions ?? [],
  });
}

/** One plaintext record holding one whole handshake message. */
export function handshakeRecord(msgType: number, messageSeq: number, body: Buffer, recordSeq: number, epoch = 0): Buffer {
  return encodeRecord(ContentType.handshake, DTLS_1_2, epoch, recordSeq, encodeHandshake(msgType, messageSeq, body));
}

/**
 * One handshake fragment with any header values, consistent or not: `length` is the claimed
 * message length, `body` the bytes actually carried (fragment_length = body.length unless given).
 */
export function rawFragment(f: { msgType: number; length: number; messageSeq: number; fragmentOffset: number; body: Buffer; fragmentLength?: number }): Buffer {
  const out = Buffer.alloc(12 + f.body.length);
  out.writeUInt8(f.msgType, 0);
  out.writeUIntBE(f.length, 1, 3);
  out.writeUInt16BE(f.messageSeq, 4);
  out.writeUIntBE(f.fragmentOffset, 6, 3);
  out.writeUIntBE(f.fragmentLength ?? f.body.length, 9, 3);
  f.body.copy(out, 12);
  return out;
}

export function plainRecord(type: number, recordSeq: number, fragment: Buffer, epoch = 0, version = DTLS_1_2): Buffer {
  return encodeRecord(type, version, epoch, recordSeq, fragment);
}

/** The cookie of a HelloVerifyRequest datagram, or undefined when it is not one. */
export function readHelloVerifyCookie(datagram: Buffer): Buffer | undefined {
  for (const r of parseRecords(datagram).records) {
    if (r.type !== ContentType.handshake || r.epoch !== 0) continue;
    for (const f of parseHandshakeFragments(r.fragment) ?? []) {
      if (f.msgType === HandshakeType.hello_verify_request) return parseHelloVerifyRequest(f.body)?.cookie;
    }
  }
  return undefined;
}

/** Alerts in plaintext (epoch 0) records of a datagram: [level, description] pairs. */
export function plainAlerts(datagram: Buffer): Array<[number, number]> {
  return parseRecords(datagram).records
    .filter((r) => r.type === ContentType.alert && r.epoch === 0 && r.fragment.length === 2)
    .map((r) => [r.fragment[0], r.fragment[1]]);
}

/** The client side of one handshake, step by step. Every method returns the datagram to send. */
export class PskClientSession {
  readonly random: Buffer;
  private recordSeq = 0;
  private epoch1Seq = 0;
  private messageSeq = 0;
  private cookieHelloBody: Buffer | undefined;
  private readonly transcript: Buffer[] = [];
  private serverRandom: Buffer | undefined;
  private serverHelloSessionId: Buffer | undefined;
  private serverMessages = new Map<number, Buffer>();
  private masterSecret: Buffer | undefined;
  private clientWrite: RecordProtection | undefined;
  private serverWrite: RecordProtection | undefined;
  private lastClientKeyExchange: { seq: number; body: Buffer } | undefined;
  private lastFinishedFragment: Buffer | undefined;
  private serverFinishedSeen = false;

  constructor(readonly hello: HelloOptions = {}) {
    this.random = hello.random ?? randomBytes(32);
  }

  /** The first ClientHello, without a cookie (message_seq 0). */
  firstHello(): Buffer {
    this.messageSeq = 1;
    return handshakeRecord(HandshakeType.client_hello, 0, clientHelloBody({ ...this.hello, random: this.random }), this.recordSeq++);
  }

  /** The second ClientHello, echoing `cookie` (message_seq 1); it starts the transcript. */
  helloWithCookie(cookie: Buffer): Buffer {
    const body = clientHelloBody({ ...this.hello, random: this.random, cookie });
    this.cookieHelloBody = body;
    this.transcript.length = 0;
    const seq = this.messageSeq++;
    this.transcript.push(encodeHandshake(HandshakeType.client_hello, seq, body));
    return handshakeRecord(HandshakeType.client_hello, seq, body, this.recordSeq++);
  }

  /** Feeds a datagram from the server; true once ServerHello and ServerHelloDone are both in. */
  onFlight4(datagram: Buffer): boolean {
    for (const r of parseRecords(datagram).records) {
      if (r.type !== ContentType.handshake || r.epoch !== 0) continue;
      for (const f of parseHandshakeFragments(r.fragment) ?? []) this.keepServerMessage(f);
    }
    const done = this.serverMessages.has(HandshakeType.server_hello) && this.serverMessages.has(HandshakeType.server_hello_done);
    if (done && this.transcript.length === 1) {
      for (const t of [HandshakeType.server_hello, HandshakeType.server_key_exchange, HandshakeType.server_hello_done]) {
        const m = this.serverMessages.get(t);
        if (m) this.transcript.push(m);
      }
    }
    return done;
  }

  /**
   * Feeds a datagram of an abbreviated handshake's server flight (RFC 5246 7.3: ServerHello,
   * ChangeCipherSpec, Finished) that resumes the session of `masterSecret`; true once the
   * server's Finished opened under that session's keys. Then changeCipherSpecAndFinished().
   */
  onAbbreviatedFlight(datagram: Buffer, masterSecret: Buffer): boolean {
    for (const r of parseRecords(datagram).records) {
      if (r.type !== ContentType.handshake) continue;
      if (r.epoch === 0) {
        for (const f of parseHandshakeFragments(r.fragment) ?? []) this.keepServerMessage(f);
        const sh = this.serverMessages.get(HandshakeType.server_hello);
        if (sh && !this.serverWrite) {
          this.transcript.push(sh);
          this.masterSecret = masterSecret;
          this.installKeys();
        }
        continue;
      }
      const plaintext = this.serverWrite?.open(r.type, r.version, r.epoch, r.sequenceNumber, r.fragment);
      for (const f of (plaintext && parseHandshakeFragments(plaintext)) ?? []) {
        if (f.msgType !== HandshakeType.finished || this.serverFinishedSeen) continue;
        this.serverFinishedSeen = true;
        this.transcript.push(encodeHandshake(f.msgType, f.messageSeq, f.body));
      }
    }
    return this.serverFinishedSeen;
  }

  /** The session ID of the server's ServerHello (empty: none issued). */
  get serverSessionId(): Buffer | undefined {
    return this.serverHelloSessionId;
  }

  /** This session's master secret, to resume it (set by deriveKeys or onAbbreviatedFlight). */
  get sessionMasterSecret(): Buffer | undefined {
    return this.masterSecret;
  }

  /** ClientKeyExchange naming `identity`; `body` replaces the well-formed message body. */
  clientKeyExchange(identity: Buffer, body?: Buffer): Buffer {
    const b = body ?? encodeClientKeyExchangePsk(identity);
    const seq = this.messageSeq++;
    this.lastClientKeyExchange = { seq, body: b };
    this.transcript.push(encodeHandshake(HandshakeType.client_key_exchange, seq, b));
    return handshakeRecord(HandshakeType.client_key_exchange, seq, b, this.recordSeq++);
  }

  /** Derives this session's keys from the PSK the client holds (call after onFlight4). */
  deriveKeys(psk: Buffer): void {
    if (!this.serverRandom) throw new Error('deriveKeys before ServerHello');
    const premaster = pskPremaster(psk);
    // RFC 7627 4: with extended_master_secret, the hash of the messages through ClientKeyExchange.
    this.masterSecret = findExtension(this.hello.extensions ?? [], ExtensionType.extended_master_secret)
      ? computeExtendedMasterSecret(premaster, createHash('sha256').update(Buffer.concat(this.transcript)).digest())
      : computeMasterSecret(premaster, this.random, this.serverRandom);
    this.installKeys();
  }

  private installKeys(): void {
    const keys = deriveKeyBlock(this.masterSecret!, this.random, this.serverRandom!, CCM_8);
    this.clientWrite = CCM_8.createProtection(keys.client, { encryptThenMac: false });
    this.serverWrite = CCM_8.createProtection(keys.server, { encryptThenMac: false });
  }

  /** The verify_data the server expects in our Finished. */
  expectedVerifyData(): Buffer {
    const hash = createHash('sha256').update(Buffer.concat(this.transcript)).digest();
    return computeVerifyData(this.masterSecret!, 'client finished', hash);
  }

  /**
   * ChangeCipherSpec and Finished in one datagram. `finishedBody` replaces the Finished body
   * (a forged or malformed one); `sealWith` encrypts under other keys (a record that does not
   * authenticate); `finishedFragment` replaces the whole handshake fragment inside the record.
   */
  changeCipherSpecAndFinished(opts: { finishedBody?: Buffer; finishedFragment?: Buffer; sealWith?: RecordProtection } = {}): Buffer {
    const ccs = plainRecord(ContentType.change_cipher_spec, this.recordSeq++, Buffer.from([1]));
    const body = opts.finishedBody ?? encodeFinished({ verifyData: this.expectedVerifyData() });
    const seq = this.messageSeq++;
    const fragment = opts.finishedFragment ?? encodeHandshake(HandshakeType.finished, seq, body);
    this.lastFinishedFragment = fragment;
    return Buffer.concat([ccs, this.sealRecord(ContentType.handshake, fragment, opts.sealWith)]);
  }

  /** The same ClientKeyExchange again under a fresh record sequence number (a retransmitted flight 5). */
  repeatClientKeyExchange(): Buffer {
    const cke = this.lastClientKeyExchange!;
    return handshakeRecord(HandshakeType.client_key_exchange, cke.seq, cke.body, this.recordSeq++);
  }

  /** ChangeCipherSpec and the same Finished again, under fresh record sequence numbers. */
  repeatChangeCipherSpecAndFinished(sealWith?: RecordProtection): Buffer {
    const ccs = plainRecord(ContentType.change_cipher_spec, this.recordSeq++, Buffer.from([1]));
    return Buffer.concat([ccs, this.sealRecord(ContentType.handshake, this.lastFinishedFragment!, sealWith)]);
  }

  /** An epoch-0 record with the next epoch-0 sequence number (what anyone can forge). */
  plain(type: number, fragment: Buffer): Buffer {
    return plainRecord(type, this.recordSeq++, fragment);
  }

  /** One epoch-1 record carrying `plaintext`. */
  sealRecord(type: number, plaintext: Buffer, sealWith?: RecordProtection): Buffer {
    const seq = this.epoch1Seq++;
    const sealer = sealWith ?? this.clientWrite!;
    return encodeRecord(type, DTLS_1_2, 1, seq, sealer.seal(type, DTLS_1_2, 1, seq, plaintext));
  }

  applicationData(data: Buffer): Buffer {
    return this.sealRecord(ContentType.application_data, data);
  }

  /** Opens the server's epoch-1 records of a datagram: [type, plaintext] of each that authenticates. */
  open(datagram: Buffer): Array<{ type: number; plaintext: Buffer }> {
    const out: Array<{ type: number; plaintext: Buffer }> = [];
    for (const r of parseRecords(datagram).records) {
      if (r.epoch !== 1 || !this.serverWrite) continue;
      const p = this.serverWrite.open(r.type, r.version, r.epoch, r.sequenceNumber, r.fragment);
      if (p) out.push({ type: r.type, plaintext: p });
    }
    return out;
  }

  get cookieHello(): Buffer | undefined {
    return this.cookieHelloBody;
  }

  private keepServerMessage(f: { msgType: number; messageSeq: number; fragmentOffset: number; fragmentLength: number; length: number; body: Buffer }): void {
    if (f.fragmentOffset !== 0 || f.fragmentLength !== f.length) return; // small flights only
    if (this.serverMessages.has(f.msgType)) return;
    this.serverMessages.set(f.msgType, encodeHandshake(f.msgType, f.messageSeq, f.body));
    if (f.msgType !== HandshakeType.server_hello) return;
    const sh = parseServerHello(f.body);
    this.serverRandom = sh?.random;
    this.serverHelloSessionId = sh?.sessionId;
  }
}

/** A UDP socket on 127.0.0.1 that queues what it receives. Every wait is bounded. */
export class RawUdpPeer {
  private readonly inbox: Buffer[] = [];
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: dgram.Socket, readonly serverPort: number) {
    socket.on('message', (m) => {
      if (this.inbox.length < 1000) this.inbox.push(m);
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  /** `sourceAddress` may be any 127.x.y.z: Linux routes all of 127/8 to the loopback interface,
   * so one test can play many source addresses without leaving the machine. */
  static async open(serverPort: number, sourceAddress = LOOPBACK): Promise<RawUdpPeer> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((done) => s.bind(0, sourceAddress, done));
    return new RawUdpPeer(s, serverPort);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(d: Buffer): void {
    this.socket.send(d, this.serverPort, LOOPBACK);
  }

  /** The next datagram, or undefined after `timeoutMs`. */
  async recv(timeoutMs = 2000): Promise<Buffer | undefined> {
    if (this.inbox.length > 0) return this.inbox.shift();
    await new Promise<void>((done) => {
      const t = setTimeout(done, timeoutMs);
      this.waiter = () => {
        clearTimeout(t);
        done();
      };
    });
    this.waiter = undefined;
    return this.inbox.shift();
  }

  /** Receives until `pred` accepts a datagram; undefined when none does before the deadline. */
  async recvUntil(pred: (d: Buffer) => boolean, timeoutMs = 3000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (let left = timeoutMs; left > 0; left = deadline - Date.now()) {
      const d = await this.recv(left);
      if (!d) return undefined;
      if (pred(d)) return d;
    }
    return undefined;
  }

  close(): Promise<void> {
    return new Promise((done) => this.socket.close(() => done()));
  }
}

/**
 * Runs a handshake up to flight 4 over `peer`: ClientHello, HelloVerifyRequest, ClientHello
 * with the cookie, ServerHello…ServerHelloDone. Returns the session, or undefined on a timeout.
 */
export async function toFlight4(peer: RawUdpPeer, hello: HelloOptions = {}, timeoutMs = 3000): Promise<PskClientSession | undefined> {
  const s = new PskClientSession(hello);
  peer.send(s.firstHello());
  const hvr = await peer.recvUntil((d) => readHelloVerifyCookie(d) !== undefined, timeoutMs);
  if (!hvr) return undefined;
  peer.send(s.helloWithCookie(readHelloVerifyCookie(hvr)!));
  const f4 = await peer.recvUntil((d) => s.onFlight4(d), timeoutMs);
  return f4 ? s : undefined;
}

/** A full, correct handshake; returns the established session or undefined. */
export async function fullHandshake(peer: RawUdpPeer, identity: string, psk: Buffer, timeoutMs = 5000, hello: HelloOptions = {}): Promise<PskClientSession | undefined> {
  const s = await toFlight4(peer, hello, timeoutMs);
  if (!s) return undefined;
  peer.send(s.clientKeyExchange(Buffer.from(identity, 'utf8')));
  s.deriveKeys(psk);
  peer.send(s.changeCipherSpecAndFinished());
  const fin = await peer.recvUntil((d) => s.open(d).some((r) => r.type === ContentType.handshake), timeoutMs);
  return fin ? s : undefined;
}

export { DTLS_1_0 };
