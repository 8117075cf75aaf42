/**
 * The client side of DTLS 1.2 PSK (RFC 6347, RFC 5246, RFC 4279, RFC 5489), for interop tests and
 * for the load generator of `npm run bench`. It shares every codec, the key schedule and the
 * record protection with the server, so a bug in either shows up as a failed handshake here.
 *
 *   ClientHello                          -->
 *                                        <--  HelloVerifyRequest (optional, RFC 6347 4.2.1)
 *   ClientHello (with cookie)            -->
 *                                        <--  ServerHello, [ServerKeyExchange], ServerHelloDone
 *   ClientKeyExchange, [CCS], Finished   -->
 *                                        <--  [CCS], Finished
 *   application data                    <->
 *
 * A `DtlsClientSession` owns no socket: it is fed datagrams and writes datagrams through a
 * callback, so a load generator can put sessions on whatever sockets it likes (one per
 * session: a session is an address and port). `connectDtls` is the simple form with its own
 * connected UDP socket, which it can swap for a new one mid-session (`rebind`: a NAT rebinding).
 *
 * Connection ID (RFC 9146): with `connectionId` set the client offers it in its ClientHello
 * and, when the server answers, sends tls12_cid records with the server's CID (client-cid.ts,
 * written apart from the server's CID code).
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { createHash, randomBytes, timingSafeEqual, type Hash } from 'node:crypto';
import { CIPHER_SUITES, TLS_PSK_WITH_AES_128_CCM_8 } from './ciphers/index.js';
import type { CipherSuite, RecordProtection } from './ciphers/types.js';
import { encodeAlert, parseAlert } from './alert.js';
import {
  AlertDescription,
  AlertLevel,
  ContentType,
  DTLS_1_2,
  ExtensionType,
  HandshakeType,
} from './constants.js';
import { generateEphemeral, isSupportedGroup, SUPPORTED_GROUPS, type Ephemeral } from './ecdhe.js';
import {
  type Extension,
  encodeEcPointFormats,
  encodeFlagExtension,
  encodeRenegotiationInfo,
  encodeSupportedGroups,
  findExtension,
  parseFlagExtension,
  parseRenegotiationInfo,
} from './extensions.js';
import { DEFAULT_RETRANSMIT, RetransmitTimer, type RetransmitPolicy } from './flight.js';
import { encodeClientHello } from './handshake/client-hello.js';
import { encodeClientKeyExchangeEcdhePsk, encodeClientKeyExchangePsk } from './handshake/client-key-exchange.js';
import { encodeFinished, parseFinished } from './handshake/finished.js';
import { encodeHandshake, fragmentHandshake, parseHandshakeFragments } from './handshake/header.js';
import { parseHelloVerifyRequest } from './handshake/hello-verify-request.js';
import { parseServerHello, type ServerHello } from './handshake/server-hello.js';
import { parseServerHelloDone } from './handshake/server-hello-done.js';
import { parseServerKeyExchangeEcdhePsk, parseServerKeyExchangePsk } from './handshake/server-key-exchange.js';
import { ecdhePskPremaster, pskPremaster } from './premaster.js';
import { computeExtendedMasterSecret, computeMasterSecret, computeVerifyData, deriveKeyBlock } from './prf.js';
import { HandshakeReassembler, type HandshakeMessage } from './reassembler.js';
import { parseRecords, type DTLSRecord } from './record.js';
import { RecordLayer, type OpenedRecord } from './record-layer.js';
import { ClientCid, type ClientRecord } from './client-cid.js';

export interface DtlsClientOptions {
  /** psk_identity (RFC 4279): for this project the device serial. */
  identity: Buffer | string;
  /** The PSK bytes, as the premaster secret uses them. */
  psk: Buffer;
  /** Offered suites by IANA value, most preferred first. Default: TLS_PSK_WITH_AES_128_CCM_8 only. */
  cipherSuites?: readonly number[];
  /** ECDHE groups offered with ecdhe_psk suites. Default x25519, secp256r1. */
  groups?: readonly number[];
  /** Offer RFC 7627 extended_master_secret. Default true. */
  extendedMasterSecret?: boolean;
  /** Flight retransmission: doubling from initialMs. Default 1 s, at most 6 retransmissions. */
  retransmit?: RetransmitPolicy;
  /** Path MTU (IP and UDP headers included) for our flights. Default 1280. */
  mtu?: number;
  /**
   * Offer RFC 9146 Connection ID: the CID we want the server to put in its records to us;
   * empty = we send the server's CID but want none. Default: no offer.
   */
  connectionId?: Buffer;
}

export type ClientState = 'idle' | 'wait_server_hello' | 'wait_server_hello_done' | 'wait_finished' | 'established' | 'closed';

/** What went wrong, as the 'error' event and the connect() rejection carry it. */
export class DtlsClientError extends Error {
  constructor(message: string, readonly alert?: number) {
    super(message);
    this.name = 'DtlsClientError';
  }
}

type OutItem = { kind: 'handshake'; epoch: number; msgType: number; messageSeq: number; body: Buffer } | { kind: 'ccs' };

const CCS_BODY = Buffer.from([1]);
const EMPTY = Buffer.alloc(0);

/**
 * One client session over any datagram transport. Events: 'established', 'data' (Buffer),
 * 'close' (reason), 'error' (DtlsClientError, before 'close' when the handshake failed).
 */
export class DtlsClientSession extends EventEmitter {
  state: ClientState = 'idle';
  /** The suite the server chose, once ServerHello arrived. */
  suite: CipherSuite | undefined;
  extendedMasterSecret = false;
  /** Flights sent again because the server did not answer in time (a loss indicator). */
  retransmissions = 0;
  /** Called with each decrypted application-data record; cheaper than the 'data' event. */
  onData: ((data: Buffer) => void) | undefined;

  private readonly identity: Buffer;
  private readonly psk: Buffer;
  private readonly offered: readonly number[];
  private readonly groups: readonly number[];
  private readonly offerEms: boolean;
  private readonly mtu: number;
  private readonly clientRandom = randomBytes(32);
  private readonly timer: RetransmitTimer;
  private readonly reassembler = new HandshakeReassembler(0);
  private transcript: Hash = createHash('sha256');
  private cookie: Buffer = EMPTY;
  private sendMessageSeq = 0;
  private flight: OutItem[] = [];
  private serverHello: ServerHello | undefined;
  private ephemeral: Ephemeral | undefined;
  private serverPublic: Buffer | undefined;
  private encryptThenMac = false;
  private masterSecret: Buffer | undefined;
  private readonly records = new RecordLayer();
  private readonly cid: ClientCid | undefined;
  /** Epoch-1 protections, kept for tls12_cid records (the record layer seals the plain ones). */
  private epoch1: { write: RecordProtection; read: RecordProtection } | undefined;

  constructor(options: DtlsClientOptions, private readonly sendDatagram: (datagram: Buffer) => void) {
    super();
    this.identity = typeof options.identity === 'string' ? Buffer.from(options.identity, 'utf8') : Buffer.from(options.identity);
    this.psk = Buffer.from(options.psk);
    this.offered = options.cipherSuites ?? [TLS_PSK_WITH_AES_128_CCM_8.id];
    for (const id of this.offered) if (!CIPHER_SUITES.has(id)) throw new RangeError(`unknown cipher suite 0x${id.toString(16)}`);
    this.groups = options.groups ?? SUPPORTED_GROUPS;
    this.offerEms = options.extendedMasterSecret ?? true;
    this.mtu = options.mtu ?? 1280;
    this.cid = options.connectionId ? new ClientCid(Buffer.from(options.connectionId)) : undefined;
    this.timer = new RetransmitTimer(
      options.retransmit ?? DEFAULT_RETRANSMIT,
      () => {
        this.retransmissions++;
        this.transmit();
      },
      () => this.fail('server stopped answering', AlertDescription.handshake_failure, false),
    );
  }

  /** Sends the first ClientHello. */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'wait_server_hello';
    this.sendClientHello();
  }

  /** Encrypts and sends one application-data record; false before the handshake is done. */
  send(data: Buffer): boolean {
    if (this.state !== 'established') return false;
    this.sendDatagram(this.protect(ContentType.application_data, data));
    return true;
  }

  /** Ends the session, with close_notify when it was established and `notify` is true. */
  close(notify = true, reason = 'closed by client'): void {
    if (this.state === 'closed') return;
    if (notify && this.state === 'established') {
      this.sendDatagram(this.protect(ContentType.alert, encodeAlert(AlertLevel.warning, AlertDescription.close_notify)));
    }
    this.finish(reason);
  }

  /** The CIDs in use once ServerHello settled them: what we send (the server's), what we receive (ours). */
  get connectionIds(): { write?: Buffer; read?: Buffer } {
    return { write: this.cid?.writeCid, read: this.cid?.readCid };
  }

  /** Feeds one datagram from the server. Never throws on what the network sent. */
  onDatagram(msg: Buffer): void {
    if (this.state === 'closed') return;
    const records: readonly ClientRecord[] = this.cid?.readCid ? this.cid.splitRecords(msg) : parseRecords(msg).records;
    for (let i = 0; i < records.length && !this.isClosed(); i++) this.onRecord(records[i]!);
  }

  /** A method, not a field test, so that TypeScript does not narrow the state across calls. */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  // --- inbound ---

  private onRecord(r: ClientRecord): void {
    // RFC 6347 4.1.2.7: what does not authenticate, or has no keys (epoch 0 once established), is dropped.
    const opened = this.openRecord(r);
    if (!opened) return;
    const plaintext = opened.content;
    switch (opened.type) {
      case ContentType.application_data:
        if (r.epoch > 0 && this.state === 'established') {
          if (this.onData) this.onData(plaintext);
          else this.emit('data', plaintext);
        }
        return;
      case ContentType.handshake:
        // Established: the server repeating its final flight (our view is complete).
        if (this.state === 'established') return;
        return this.onHandshakeRecord(plaintext);
      case ContentType.alert:
        return this.onAlert(plaintext);
      default:
        return; // ChangeCipherSpec: the epoch-1 Finished is what matters
    }
  }

  /** RFC 9146 section 3: once we asked for a CID, the server's protected records are tls12_cid. */
  private openRecord(r: ClientRecord): OpenedRecord | undefined {
    if (this.cid?.readCid && r.epoch > 0) return this.epoch1 && this.cid.open(this.epoch1.read, r);
    return this.records.open(r as DTLSRecord);
  }

  private onHandshakeRecord(plaintext: Buffer): void {
    const fragments = parseHandshakeFragments(plaintext);
    if (!fragments) return this.fail('malformed handshake fragment', AlertDescription.decode_error);
    let sawOld = false;
    for (const f of fragments) {
      const added = this.reassembler.add(f);
      if (added === 'old') sawOld = true;
      else if (added === 'invalid') return this.fail('inconsistent handshake fragments', AlertDescription.illegal_parameter);
    }
    // The server repeated a flight: ours was lost on its way (RFC 6347 4.2.4).
    if (sawOld && this.state === 'wait_finished') this.transmit();
    for (let m = this.reassembler.next(); m && !this.isClosed(); m = this.reassembler.next()) this.onMessage(m);
  }

  private onMessage(m: HandshakeMessage): void {
    switch (this.state) {
      case 'wait_server_hello':
        if (m.msgType === HandshakeType.hello_verify_request) return this.onHelloVerifyRequest(m);
        if (m.msgType === HandshakeType.server_hello) return this.onServerHello(m);
        break;
      case 'wait_server_hello_done':
        if (m.msgType === HandshakeType.server_key_exchange) return this.onServerKeyExchange(m);
        if (m.msgType === HandshakeType.server_hello_done) return this.onServerHelloDone(m);
        break;
      case 'wait_finished':
        if (m.msgType === HandshakeType.finished) return this.onFinished(m);
        break;
      default:
        return; // established: a late duplicate
    }
    this.fail(`unexpected handshake message ${m.msgType} in ${this.state}`, AlertDescription.unexpected_message);
  }

  private onHelloVerifyRequest(m: HandshakeMessage): void {
    const hvr = parseHelloVerifyRequest(m.body);
    if (!hvr) return this.fail('malformed HelloVerifyRequest', AlertDescription.decode_error);
    if (this.cookie.length > 0) return; // a second one: the server repeated itself
    this.cookie = Buffer.from(hvr.cookie);
    // RFC 6347 4.2.1: the first ClientHello and the HelloVerifyRequest stay out of the hash.
    this.transcript = createHash('sha256');
    this.sendClientHello();
  }

  private onServerHello(m: HandshakeMessage): void {
    const sh = parseServerHello(m.body);
    if (!sh) return this.fail('malformed ServerHello', AlertDescription.decode_error);
    if (sh.serverVersion !== DTLS_1_2) return this.fail('server did not choose DTLS 1.2', AlertDescription.protocol_version);
    const suite = CIPHER_SUITES.get(sh.cipherSuite);
    if (!suite || !this.offered.includes(sh.cipherSuite)) return this.fail('server chose a suite we did not offer', AlertDescription.illegal_parameter);
    if (sh.compressionMethod !== 0) return this.fail('server chose compression', AlertDescription.illegal_parameter);
    const ems = parseFlagExtension(sh.extensions, ExtensionType.extended_master_secret);
    const etm = parseFlagExtension(sh.extensions, ExtensionType.encrypt_then_mac);
    if (ems === undefined || etm === undefined) return this.fail('flag extension with data', AlertDescription.decode_error);
    if (ems && !this.offerEms) return this.fail('unsolicited extended_master_secret', AlertDescription.unsupported_extension);
    if (findExtension(sh.extensions, ExtensionType.connection_id) && !this.cid) {
      return this.fail('unsolicited connection_id', AlertDescription.unsupported_extension);
    }
    const cidError = this.cid?.settle(sh.extensions);
    if (cidError) return this.fail(cidError, AlertDescription.decode_error);
    const reneg = findExtension(sh.extensions, ExtensionType.renegotiation_info);
    if (reneg && parseRenegotiationInfo(reneg.data)?.length !== 0) {
      return this.fail('non-empty renegotiation_info', AlertDescription.handshake_failure);
    }
    this.timer.stop(); // the server answered our ClientHello
    this.serverHello = sh;
    this.suite = suite;
    this.extendedMasterSecret = ems;
    this.encryptThenMac = etm && !suite.aead;
    this.hash(m);
    this.state = 'wait_server_hello_done';
  }

  private onServerKeyExchange(m: HandshakeMessage): void {
    if (this.suite!.keyExchange === 'ecdhe_psk') {
      const ske = parseServerKeyExchangeEcdhePsk(m.body);
      if (!ske) return this.fail('malformed ServerKeyExchange', AlertDescription.decode_error);
      if (!isSupportedGroup(ske.namedGroup) || !this.groups.includes(ske.namedGroup)) {
        return this.fail('server chose a group we did not offer', AlertDescription.illegal_parameter);
      }
      this.ephemeral = generateEphemeral(ske.namedGroup);
      this.serverPublic = Buffer.from(ske.publicKey);
    } else if (!parseServerKeyExchangePsk(m.body)) {
      return this.fail('malformed ServerKeyExchange', AlertDescription.decode_error);
    }
    // The identity hint is not used: our identity is the device serial whatever the server hints.
    this.hash(m);
  }

  private onServerHelloDone(m: HandshakeMessage): void {
    if (!parseServerHelloDone(m.body)) return this.fail('malformed ServerHelloDone', AlertDescription.decode_error);
    const suite = this.suite!;
    if (suite.keyExchange === 'ecdhe_psk' && !this.ephemeral) return this.fail('ServerKeyExchange missing', AlertDescription.unexpected_message);
    this.hash(m);

    let z: Buffer | undefined;
    let cke: Buffer;
    if (this.ephemeral) {
      z = this.ephemeral.computeSecret(this.serverPublic!);
      if (!z) return this.fail('invalid ECDHE public key', AlertDescription.illegal_parameter);
      cke = encodeClientKeyExchangeEcdhePsk(this.identity, this.ephemeral.publicKey);
    } else {
      cke = encodeClientKeyExchangePsk(this.identity);
    }
    const ckeItem = this.item(HandshakeType.client_key_exchange, cke, 0);
    const premaster = z ? ecdhePskPremaster(z, this.psk) : pskPremaster(this.psk);
    z?.fill(0);
    const serverRandom = this.serverHello!.random;
    this.masterSecret = this.extendedMasterSecret
      ? computeExtendedMasterSecret(premaster, this.transcript.copy().digest())
      : computeMasterSecret(premaster, this.clientRandom, serverRandom);
    premaster.fill(0);
    const keys = deriveKeyBlock(this.masterSecret, this.clientRandom, serverRandom, suite);
    const opts = { encryptThenMac: this.encryptThenMac };
    this.epoch1 = { write: suite.createProtection(keys.client, opts), read: suite.createProtection(keys.server, opts) };
    this.records.installWriteKeys(this.epoch1.write, suite.maxExpansion);
    this.records.installReadKeys(this.epoch1.read);
    for (const k of [keys.client, keys.server]) {
      k.macKey.fill(0);
      k.encKey.fill(0);
      k.fixedIv.fill(0);
    }
    const verifyData = computeVerifyData(this.masterSecret, 'client finished', this.transcript.copy().digest());
    const finItem = this.item(HandshakeType.finished, encodeFinished({ verifyData }), 1);
    this.flight = [ckeItem, { kind: 'ccs' }, finItem];
    this.state = 'wait_finished';
    this.transmit();
    this.timer.start(true);
  }

  private onFinished(m: HandshakeMessage): void {
    const fin = parseFinished(m.body);
    if (!fin) return this.fail('malformed Finished', AlertDescription.decode_error);
    const expected = computeVerifyData(this.masterSecret!, 'server finished', this.transcript.digest());
    if (!timingSafeEqual(expected, fin.verifyData)) return this.fail('server Finished does not verify', AlertDescription.decrypt_error);
    this.timer.stop();
    this.flight = [];
    this.masterSecret!.fill(0);
    // The handshake is over: epoch-0 records (unauthenticated) are never read again.
    this.records.retireOldEpochs();
    this.state = 'established';
    this.emit('established');
  }

  private onAlert(plaintext: Buffer): void {
    const alert = parseAlert(plaintext);
    if (!alert) return;
    if (alert.description === AlertDescription.close_notify) return this.finish('server sent close_notify');
    if (alert.level === AlertLevel.fatal) this.fail(`server sent fatal alert ${alert.description}`, undefined, false, alert.description);
  }

  // --- outbound ---

  private sendClientHello(): void {
    const exts: Extension[] = [];
    const suites = this.offered.map((id) => CIPHER_SUITES.get(id)!);
    const ecdhe = suites.some((s) => s.keyExchange === 'ecdhe_psk');
    if (ecdhe) {
      exts.push(encodeSupportedGroups(this.groups));
      exts.push(encodeEcPointFormats([0]));
    }
    if (this.offerEms) exts.push(encodeFlagExtension(ExtensionType.extended_master_secret));
    if (suites.some((s) => !s.aead)) exts.push(encodeFlagExtension(ExtensionType.encrypt_then_mac));
    exts.push(encodeRenegotiationInfo());
    if (this.cid) exts.push(this.cid.extension());
    const body = encodeClientHello({
      clientVersion: DTLS_1_2,
      random: this.clientRandom,
      sessionId: EMPTY,
      cookie: this.cookie,
      cipherSuites: [...this.offered],
      compressionMethods: [0],
      extensions: exts,
    });
    this.flight = [this.item(HandshakeType.client_hello, body, 0)];
    this.transmit();
    this.timer.start(true);
  }

  /** A message of ours: next message_seq, and into the transcript. */
  private item(msgType: number, body: Buffer, epoch: number): OutItem {
    const messageSeq = this.sendMessageSeq++;
    this.transcript.update(encodeHandshake(msgType, messageSeq, body));
    return { kind: 'handshake', epoch, msgType, messageSeq, body };
  }

  private hash(m: HandshakeMessage): void {
    this.transcript.update(encodeHandshake(m.msgType, m.messageSeq, m.body));
  }

  /** (Re)sends the current flight with fresh record sequence numbers, packed into datagrams. */
  private transmit(): void {
    if (this.state === 'closed') return;
    const budget = this.mtu - 28;
    let batch: Buffer[] = [];
    let size = 0;
    const push = (rec: Buffer): void => {
      if (size + rec.length > budget && batch.length > 0) {
        this.sendDatagram(batch.length === 1 ? batch[0]! : Buffer.concat(batch, size));
        batch = [];
        size = 0;
      }
      batch.push(rec);
      size += rec.length;
    };
    for (const it of this.flight) {
      if (it.kind === 'ccs') {
        push(this.record(ContentType.change_cipher_spec, 0, CCS_BODY));
        // RFC 5246 7.1: our records after our ChangeCipherSpec use the new keys, not before.
        this.records.changeCipherSpecSent(0);
        continue;
      }
      const cidBytes = it.epoch > 0 ? (this.cid?.extraBytes ?? 0) : 0;
      const maxBody = budget - 13 - 12 - this.records.expansion(it.epoch) - cidBytes;
      for (const frag of fragmentHandshake(it.msgType, it.messageSeq, it.body, maxBody)) push(this.record(ContentType.handshake, it.epoch, frag));
    }
    if (batch.length > 0) this.sendDatagram(batch.length === 1 ? batch[0]! : Buffer.concat(batch, size));
  }

  private record(type: number, epoch: number, plaintext: Buffer): Buffer {
    if (epoch > 0 && this.epoch1 && this.cid?.sendsCid) return this.cid.seal(this.epoch1.write, DTLS_1_2, epoch, type, plaintext);
    const rec = this.records.seal(type, plaintext, epoch);
    if (!rec) throw new DtlsClientError(`no write keys or sequence numbers left in epoch ${epoch}`);
    return rec;
  }

  /** A record in the current write epoch: plaintext until our ChangeCipherSpec went out. */
  private protect(type: number, plaintext: Buffer): Buffer {
    return this.record(type, this.records.currentWriteEpoch, plaintext);
  }

  private fail(reason: string, alert?: number, sendAlert = true, received?: number): void {
    if (this.state === 'closed') return;
    if (sendAlert && alert !== undefined) {
      try {
        this.sendDatagram(this.protect(ContentType.alert, encodeAlert(AlertLevel.fatal, alert)));
      } catch {
        // the alert is a courtesy; the session ends either way
      }
    }
    const err = new DtlsClientError(reason, received ?? alert);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.finish(reason);
  }

  private finish(reason: string): void {
    this.state = 'closed';
    this.timer.stop();
    this.psk.fill(0);
    this.masterSecret?.fill(0);
    this.flight = [];
    this.reassembler.clear();
    this.emit('close', reason);
  }
}

export interface ConnectOptions extends DtlsClientOptions {
  host: string;
  port: number;
  /** Give up the handshake after this long. Default 10 s. */
  timeoutMs?: number;
}

/** A session on its own connected UDP socket. */
export interface DtlsClient {
  readonly session: DtlsClientSession;
  /** The current socket (a new one after `rebind`). */
  readonly socket: dgram.Socket;
  send(data: Buffer): boolean;
  /**
   * Moves the session to a new UDP socket (a new source port), as a NAT rebinding does, and
   * closes the old one; resolves with the new local port. The session and its keys stay; with
   * a Connection ID the server finds the session by it (RFC 9146 section 6).
   */
  rebind(): Promise<number>;
  /** Sends close_notify and closes the socket. */
  close(): Promise<void>;
}

async function connectedSocket(host: string, port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => {}); // ICMP unreachable and friends: retransmission copes
  return socket;
}

/** Opens a UDP socket, connects it to host:port and runs the handshake; resolves when established. */
export async function connectDtls(options: ConnectOptions): Promise<DtlsClient> {
  let socket = await connectedSocket(options.host, options.port);
  const session = new DtlsClientSession(options, (d) => socket.send(d));
  const listen = (s: dgram.Socket) => s.on('message', (msg) => session.onDatagram(msg));
  listen(socket);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    session.close(true);
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  };
  const rebind = async (): Promise<number> => {
    const next = await connectedSocket(options.host, options.port);
    listen(next);
    const old = socket;
    socket = next;
    await new Promise<void>((resolve) => old.close(() => resolve()));
    return next.address().port;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.close(false, 'handshake timeout');
        reject(new DtlsClientError('handshake timeout'));
      }, options.timeoutMs ?? 10_000);
      session.once('established', () => {
        clearTimeout(timer);
        resolve();
      });
      session.once('error', (e: Error) => {
        clearTimeout(timer);
        reject(e);
      });
      session.once('close', (reason: string) => {
        clearTimeout(timer);
        reject(new DtlsClientError(reason));
      });
      session.start();
    });
  } catch (e) {
    await close();
    throw e;
  }
  session.removeAllListeners('close');
  session.removeAllListeners('error');
  session.on('error', () => {});
  return {
    session,
    get socket() {
      return socket;
    },
    send: (d) => session.send(d),
    rebind,
    close,
  };
}
