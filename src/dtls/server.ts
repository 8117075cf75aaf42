/**
 * The DTLS 1.2 PSK server: owns the UDP socket, answers ClientHellos statelessly until a
 * cookie verifies, then keeps one Connection per address and port.
 *
 * Nothing a datagram contains can throw out of the socket handler: parsers return undefined,
 * and a last-resort catch counts the datagram as dropped. No key is looked up and no handshake
 * state is made before the client has echoed a valid cookie (RFC 6347 section 4.2.1); the one
 * exception is the bounded buffer of a fragmented ClientHello (hello-reassembly.ts).
 *
 * A session lives until close_notify or a fatal alert under its keys, the idle timeout, or a
 * new handshake from its address:port whose Finished verified (RFC 6347 4.2.8): until then the
 * new handshake runs beside it, and records go to whichever of the two authenticates them.
 *
 * With a Connection ID (RFC 9146, `cidLength` > 0) a record finds its session by the CID in
 * its header first, by address and port otherwise; the session then decides whether its peer
 * moved (connection.ts, section 6), and the address map follows it.
 */
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { EventEmitter } from 'node:events';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_0, HandshakeType } from './constants.js';
import { CookieJar } from './cookie.js';
import { Connection, peerKey } from './connection.js';
import { DEFAULT_DTLS_CONFIG, type DtlsServerConfig } from './config.js';
import { encodeAlert } from './alert.js';
import { parseClientHello, type ClientHello } from './handshake/client-hello.js';
import { encodeHandshake, parseHandshakeFragments, type HandshakeFragment } from './handshake/header.js';
import { HandshakeWork } from './handshake-work.js';
import { HelloReassembly } from './hello-reassembly.js';
import { encodeHelloVerifyRequest } from './handshake/hello-verify-request.js';
import { isFailure, negotiate, type NegotiationFailure } from './negotiation.js';
import { encodeRecord, MAX_SEQUENCE_NUMBER, type DTLSRecord } from './record.js';
import { parseCidRecords, peekCid } from './cid-record.js';
import { CidFactory, MIN_CID_NONCE_LENGTH } from './cid-factory.js';
import { serverCidForClientHello, type CidUse } from './cid-negotiation.js';
import type { Negotiated } from './negotiation.js';
import type { PeerAddress } from './peer-address.js';
import { ServerHandshake, type HandshakeOptions, type HandshakeResult, type KeyLookupQueue } from './server-handshake.js';
import { SourceRateLimiter } from './rate-limit.js';
import type { PskLookup, PskRefusedCheck } from './psk.js';
import { planResumption, resumedNegotiation, type ResumedKind, type ResumptionPlan } from './server-resumption.js';
import { SessionCache } from './session-cache.js';
import { TicketKeyRing } from './ticket-keys.js';
import { randomBytes } from 'node:crypto';
import type { DropReason, HandshakeFailure } from './reasons.js';
import type { PeerDescription } from './session.js';
import { silentLogger, type Logger } from '../log.js';

export type { DropReason, HandshakeFailure } from './reasons.js';

export interface DtlsServerOptions extends Partial<DtlsServerConfig> {
  /** The keys a PSK identity may hold (src/server.ts adapts the key store to it). */
  pskLookup: PskLookup;
  /** The PSK lookup side's cheap check, without deriving: a refused identity cannot resume. */
  pskRefused?: PskRefusedCheck;
  /**
   * The ticket keys now (a ring that rotates: a key file's or the HSM-derived one). Default: one
   * random key per process, replaced every ticket lifetime, the previous one still opening.
   */
  ticketKeys?: () => TicketKeyRing;
  logger?: Logger;
}

/**
 * CID routing between the processes of one group (src/cluster/cid-routing.ts): the CIDs this
 * server issues carry `route`, masked with `secret` (shared by the group), and a tls12_cid record
 * whose CID carries another route and names no session here goes to `foreign` instead of being
 * dropped. Set before listen().
 */
export interface CidRouting {
  route: number;
  routeBytes: number;
  secret: Buffer;
  /** True when it took the datagram; false lets it go the usual way (to be dropped). */
  foreign(route: number, datagram: Buffer, address: string, port: number): boolean;
  /**
   * Sends a session's datagram by the path its newest record came (onDatagram's `via`) instead
   * of from this server's socket; without it, every datagram leaves from the socket.
   */
  via?(path: number, datagram: Buffer, address: string, port: number): void;
}

export interface DtlsListenOptions {
  /** SO_REUSEPORT (Node ≥ 22.12; older Node ignores it and the second bind fails EADDRINUSE). */
  reusePort?: boolean;
  /** A bound socket to serve on instead of binding one. */
  socket?: dgram.Socket;
}

export interface HandshakeEvent {
  readonly address: string;
  readonly port: number;
  readonly identity?: string;
  /** The opaque tag of the key that verified (see PskKey.tag). */
  readonly pskTag?: string;
  readonly cipherSuite?: string;
  readonly durationMs: number;
  readonly result: 'ok' | 'failed';
  /** How a successful handshake went: full, or abbreviated from a cached session ID or a ticket. */
  readonly kind?: HandshakeKind;
  /** A code from HANDSHAKE_FAILURES when the handshake failed. */
  readonly reason?: HandshakeFailure;
  /** Free text for the log line, never a metric label. */
  readonly detail?: string;
}

export interface HeldDatagram {
  readonly msg: Buffer;
  readonly address: string;
  readonly port: number;
  /** As onDatagram took them: a record another node or worker passed here, and its path back. */
  readonly forwarded?: boolean;
  readonly via?: number;
}

export type HandshakeKind = 'full' | 'resumed_id' | 'resumed_ticket';

interface InitialHello {
  readonly hello: ClientHello;
  readonly messageSeq: number;
  readonly body: Buffer;
  /** For a reassembled hello: the record of its fragments with the highest sequence number. */
  readonly record?: DTLSRecord;
}

export class DtlsServer extends EventEmitter {
  readonly config: DtlsServerConfig;
  private readonly pskLookup: PskLookup;
  private readonly log: Logger;
  private readonly cookies: CookieJar;
  /** Established sessions by address and port (a session that moved, by its new one). */
  private readonly connections = new Map<string, Connection>();
  /** Established sessions with a CID, by the CID their peer puts in its records (latin1 key). */
  private readonly byCid = new Map<string, Connection>();
  /** Every established session, whichever maps hold it. */
  private readonly established = new Set<Connection>();
  private cidFactory: CidFactory | undefined;
  private cidRouting: CidRouting | undefined;
  /**
   * Handshakes by address and port. One may run while that address:port still has a session
   * (RFC 6347 4.2.8): the old session stays until the new handshake's Finished verifies.
   */
  private readonly pending = new Map<string, Connection>();
  private lastFound: Connection | undefined;
  private socket: dgram.Socket | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  /**
   * Datagrams handed to the socket whose send has not completed yet, counted only once close()
   * began: a completion callback costs a tick per datagram, and only the close_notify alerts
   * must leave before the socket closes.
   */
  private tracking = false;
  private sending = 0;
  private whenSent: (() => void) | undefined;
  private readonly sent = (): void => {
    if (--this.sending === 0) this.whenSent?.();
  };
  private accepting = true;
  private readonly lookups: KeyLookupQueue;
  private readonly rateLimiter: SourceRateLimiter;
  private readonly helloFragments = new HelloReassembly();
  /** While a hand-over runs (hold()), datagrams wait here instead of being served. */
  private held: HeldDatagram[] | undefined;
  readonly stats = {
    datagrams: 0,
    dropped: {} as Record<string, number>,
    handshakesOk: 0,
    handshakesFailed: 0,
    /** RFC 9146 section 6: sessions that moved to a new address, and records from elsewhere that moved nothing. */
    addressUpdates: 0,
    addressUpdatesRejected: 0,
    /** Datagrams not sent to a session's new address because it had not proven itself yet. */
    heldForUnprovenAddress: 0,
  };
  private readonly pskRefused: PskRefusedCheck | undefined;
  private readonly ticketKeys: () => TicketKeyRing;
  private readonly sessionCache: SessionCache | undefined;
  /** What every Connection reports to: one object for all, not a set of closures per handshake. */
  private readonly events = this.connectionEvents();
  /** The handshake settings every handshake shares (its resumption plan is its own). */
  private readonly handshakeOptions: HandshakeOptions;

  constructor(options: DtlsServerOptions) {
    super();
    const { pskLookup, pskRefused, ticketKeys, logger, ...overrides } = options;
    this.config = { ...DEFAULT_DTLS_CONFIG, ...overrides };
    this.pskLookup = pskLookup;
    this.pskRefused = pskRefused;
    this.ticketKeys = ticketKeys ?? rotatingRandomRing(this.config.ticketLifetimeMs);
    const c = this.config;
    this.sessionCache = c.resumption && c.sessionCacheMax > 0 ? new SessionCache({ maxEntries: c.sessionCacheMax, ttlMs: c.ticketLifetimeMs }) : undefined;
    this.log = logger ?? silentLogger();
    this.cookies = new CookieJar(this.config.cookieRotationMs);
    this.lookups = { pending: 0, max: this.config.maxPendingKeyLookups, timeoutMs: this.config.keyLookupTimeoutMs };
    this.rateLimiter = new SourceRateLimiter(this.config.handshakeRatePerSource, this.config.handshakeBurstPerSource);
    this.cidFactory = this.config.cidLength > 0 ? new CidFactory({ length: this.config.cidLength }) : undefined;
    this.handshakeOptions = {
      pskLookup: this.pskLookup,
      lookups: this.lookups,
      identityHint: c.identityHint,
      maxIdentityLength: c.maxIdentityLength,
      retransmit: c.retransmit,
      handshakeTimeoutMs: c.handshakeTimeoutMs,
      maxQueuedRecords: c.maxQueuedRecords,
      maxReassemblyBytes: c.maxReassemblyBytes,
      work: new HandshakeWork(c.handshakeSliceMs, (err) => this.internalError('handshake work failed', err)),
    };
  }

  /**
   * Binds a UDP socket and starts serving. Resolves with the bound address.
   * `reusePort` (Node ≥ 22.12) lets several processes bind the same port, the kernel spreading
   * peers over them by their 4-tuple; `socket` serves on a socket already bound elsewhere (the
   * workers' primary binds them, src/cluster/sockets.ts), port and host are then ignored.
   */
  async listen(port: number, host = '0.0.0.0', options: DtlsListenOptions = {}): Promise<{ address: string; port: number }> {
    const socket = options.socket ?? dgram.createSocket({
      type: host.includes(':') ? 'udp6' : 'udp4',
      recvBufferSize: this.config.recvBufferSize,
      sendBufferSize: this.config.sendBufferSize,
      lookup: literalAddressLookup,
      ...(options.reusePort ? { reusePort: true } : {}),
    });
    if (!options.socket) await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.log.error({ err: err.message }, 'udp socket error'));
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo.address, rinfo.port));
    this.socket = socket;
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    const a = socket.address();
    return { address: a.address, port: a.port };
  }

  /** Key lookups waiting for the HSM right now. */
  get pendingKeyLookups(): number {
    return this.lookups.pending;
  }

  /**
   * First step of a graceful shutdown: no new handshake from now on (ClientHellos are
   * dropped), while established sessions keep exchanging data until close().
   */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Sends close_notify to every session and closes the socket once those have left. */
  async close(): Promise<void> {
    this.accepting = false;
    this.tracking = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const conn of [...this.pending.values()]) conn.close('server closing', false, 'server_closing');
    for (const conn of [...this.established]) conn.close('server closing', true);
    // Closing the socket would cancel datagrams still queued in it: the close_notify alerts.
    if (this.sending > 0) {
      await new Promise<void>((resolve) => {
        const bound = setTimeout(resolve, 1000); // a send that never completes does not hold us
        this.whenSent = () => {
          clearTimeout(bound);
          resolve();
        };
      });
      this.whenSent = undefined;
    }
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  get sessionCount(): number {
    return this.established.size;
  }

  /** Established sessions whose peer sends us a CID. */
  get cidSessionCount(): number {
    return this.byCid.size;
  }

  get handshakeCount(): number {
    return this.pending.size;
  }

  // --- by address and port ---

  /** Who the session of address:port is, or undefined (a lookup for operators and tests). */
  peer(address: string, port: number): PeerDescription | undefined {
    return this.find(address, port)?.peerDescription;
  }

  /**
   * The connection of address:port. The last answer is kept: consecutive datagrams of one peer
   * (a burst, a flight) find it without building and hashing the key string again. A closed
   * connection is never returned from the memo.
   */
  private find(address: string, port: number): Connection | undefined {
    const memo = this.lastFound;
    if (memo !== undefined && memo.port === port && memo.address === address && memo.state !== 'closed') return memo;
    const conn = this.connections.get(peerKey(address, port));
    if (conn !== undefined) this.lastFound = conn;
    return conn;
  }

  // --- inbound ---

  // --- graceful restart (session-export.ts, src/cluster/takeover.ts) ---

  /** The established sessions, for a hand-over. */
  establishedSessions(): Connection[] {
    return [...this.established];
  }

  /**
   * A session handed over by another process: `restore` makes the fresh Connection the
   * established session; it is then served as if its handshake had run here ('session-open',
   * no 'handshake' event), found by its CID too when it has one. Undefined when `restore`
   * refused it, or its CID cannot be served here.
   */
  adopt(address: string, port: number, cid: CidUse, restore: (conn: Connection) => boolean): Connection | undefined {
    // Records find a CID session by the CID in their header, parsed at this server's CID length
    // (RFC 9146 4): a CID of another length, or one already taken here, could not be reached.
    const readKey = cid.readCid?.toString('latin1');
    if (cid.readCid && (cid.readCid.length !== this.config.cidLength || this.byCid.has(readKey!))) return undefined;
    const conn = new Connection(address, port, this.events, this.config.mtu, 0, cid);
    if (!restore(conn) || conn.state !== 'established') return undefined;
    this.connections.get(conn.key)?.close('replaced by a handed-over session', false);
    this.connections.set(conn.key, conn);
    if (readKey !== undefined) this.byCid.set(readKey, conn);
    this.established.add(conn);
    this.emit('session-open', conn);
    return conn;
  }

  /**
   * Datagrams are kept (up to `max` of them and `maxBytes` in all, the rest dropped as
   * 'closing') instead of served, so that no session's state changes while it is handed over.
   */
  hold(max: number, maxBytes: number): void {
    this.held ??= [];
    this.heldMax = max;
    this.heldMaxBytes = maxBytes;
  }

  /** Ends hold(): returns what arrived meanwhile, unserved. */
  takeHeld(): HeldDatagram[] {
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    return held;
  }

  /**
   * The sessions went to another process: forgets them without close_notify (the peers keep
   * them, with the other process), then closes the socket.
   */
  async detach(): Promise<void> {
    this.accepting = false;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const conn of [...this.pending.values()]) conn.close('server handing over', false, 'server_closing');
    for (const conn of [...this.connections.values()]) conn.close('handed over', false);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private heldMax = 0;
  private heldMaxBytes = 0;
  private heldBytes = 0;

  /**
   * Issues CIDs that carry `routing.route` and hands other routes' CID records to
   * `routing.foreign`. False (nothing changed) when the CID length leaves no room for the route.
   */
  routeCids(routing: CidRouting): boolean {
    if (this.config.cidLength < MIN_CID_NONCE_LENGTH + routing.routeBytes) return false;
    this.cidFactory = new CidFactory({ length: this.config.cidLength, routeBytes: routing.routeBytes, secret: routing.secret });
    this.cidRouting = routing;
    return true;
  }

  /** The route a CID of ours carries (routeCids), or undefined: not routed, or not a CID we could have issued. */
  routeOf(cid: Buffer): number | undefined {
    return this.cidRouting ? this.cidFactory?.routeOf(cid) : undefined;
  }

  /**
   * Public so that tests and the load generator can feed datagrams without a socket.
   * `forwarded`: the datagram came from another process of the group; it is never passed on again.
   * `via`: the path it came by (CidRouting.via), for the session's replies; undefined: direct.
   */
  onDatagram(msg: Buffer, address: string, port: number, forwarded = false, via?: number): void {
    if (this.held) {
      if (this.held.length < this.heldMax && this.heldBytes + msg.length <= this.heldMaxBytes) {
        this.heldBytes += msg.length;
        this.held.push(forwarded ? { msg, address, port, forwarded, via } : { msg, address, port });
      } else this.drop('closing', address, port);
      return;
    }
    this.stats.datagrams++;
    try {
      this.route(msg, address, port, forwarded, via);
    } catch (err) {
      this.internalError('datagram handler failed', err, { address, port });
    }
  }

  private route(msg: Buffer, address: string, port: number, forwarded: boolean, via: number | undefined): void {
    const cidLength = this.config.cidLength;
    const { records } = parseCidRecords(msg, cidLength);
    if (records.length === 0) return this.drop('malformed', address, port);
    const from = { address, port, via };
    // RFC 9146: the CID finds the session wherever the datagram came from; the session then
    // authenticates each record and decides whether its peer moved.
    const cid = this.byCid.size > 0 || this.cidRouting ? peekCid(msg, cidLength) : undefined;
    const owner = cid && this.byCid.get(cid.toString('latin1'));
    if (owner) return owner.onRecords(records, from, msg.length);
    if (cid && this.cidRouting && !forwarded) {
      const route = this.cidFactory!.routeOf(cid)!;
      if (route !== this.cidRouting.route && this.cidRouting.foreign(route, msg, address, port)) return;
    }
    const conn = this.find(address, port);
    const handshake = this.pending.size > 0 ? this.pending.get(peerKey(address, port)) : undefined;
    const first = records[0];
    if (first.epoch === 0 && first.type === ContentType.handshake) {
      const initial = readInitialClientHello(first) ?? this.reassembleClientHello(records, address, port);
      if (initial === 'dropped') return this.drop('fragmented_hello', address, port);
      if (initial === 'incomplete') return;
      if (initial) return this.onClientHello(initial, initial.record ?? first, address, port, conn, handshake);
    }
    if (conn && handshake) {
      // Both an old session and a new handshake: each record goes to whichever authenticates it.
      const rest = conn.takeOwnRecords(records, from, msg.length);
      if (rest.length > 0) handshake.onRecords(rest, from, msg.length);
      return;
    }
    const target = conn ?? handshake;
    if (!target) return this.drop('no_session', address, port);
    target.onRecords(records, from, msg.length);
  }

  /**
   * The client_hello fragments of a datagram (one or several records), into the bounded
   * pre-cookie buffer of their source. undefined when the datagram holds none.
   */
  private reassembleClientHello(records: readonly DTLSRecord[], address: string, port: number): InitialHello | 'incomplete' | 'dropped' | undefined {
    const fragments: HandshakeFragment[] = [];
    let last: DTLSRecord | undefined;
    for (const r of records) {
      if (r.epoch !== 0 || r.type !== ContentType.handshake) continue;
      const fs = parseHandshakeFragments(r.fragment);
      if (!fs || !fs.every((f) => f.msgType === HandshakeType.client_hello)) continue;
      fragments.push(...fs);
      if (!last || r.sequenceNumber > last.sequenceNumber) last = r;
    }
    if (fragments.length === 0 || !last) return undefined;
    const whole = this.helloFragments.add(peerKey(address, port), fragments);
    if (typeof whole === 'string') {
      return whole; // a dropped one is logged by drop()
    }
    const hello = parseClientHello(whole.body);
    if (!hello) return 'dropped';
    // The record that completed it stands for the hello: its sequence number is the one the
    // HelloVerifyRequest echoes and ours continue past (the highest of the fragments' records).
    return { hello, messageSeq: whole.messageSeq, body: whole.body, record: last };
  }

  private onClientHello(initial: InitialHello, record: DTLSRecord, address: string, port: number, conn: Connection | undefined, pending: Connection | undefined): void {
    if (!this.accepting) return this.drop('closing', address, port);
    const ch = initial.hello;
    // The same ClientHello again: our flight 4 was lost on its way.
    if (pending?.handshake && pending.handshake.clientHello.random.equals(ch.random)) {
      pending.handshake.onFlight3Repeated();
      return;
    }
    // A late copy of the ClientHello that made the current session: the network duplicated or
    // delayed it. Taking it as a reboot would kill the session it already created.
    if (conn?.session?.clientRandom.equals(ch.random)) return this.drop('stale_hello', address, port);
    const cookieInput = { address, port, clientVersion: ch.clientVersion, random: ch.random, cipherSuites: ch.cipherSuites, compressionMethods: ch.compressionMethods };
    const cookieFailure = ch.cookie.length === 0 ? 'none' : this.cookies.check(cookieInput, ch.cookie);
    if (cookieFailure) {
      if (cookieFailure !== 'none') {
        // Unauthenticated noise, or a client that changed its hello: debug, with why.
        this.drop('bad_cookie_hello', address, port, cookieFailure);
      }
      this.sendHelloVerifyRequest(this.cookies.issue(cookieInput), initial.messageSeq, record.sequenceNumber, address, port);
      return;
    }
    // Everything past this line costs memory or an HSM call: the cookie proved the address,
    // and these bounds keep any one address, and everyone together, from exhausting either.
    if (!this.rateLimiter.take(address)) return this.drop('rate_limited', address, port);
    if (this.pending.size >= this.config.maxHandshakes) return this.refuseHello('handshake_limit', record, address, port);
    const offered = negotiate(ch, this.config);
    const plan = isFailure(offered) ? undefined : this.planResumption(ch, offered);
    // A resumption makes no key lookup: a backlog at the HSM does not hold it up.
    const resumes = plan !== undefined && plan !== 'abort' && plan.resumes !== undefined;
    if (!resumes && this.lookups.pending >= this.lookups.max) return this.refuseHello('key_lookup_queue_full', record, address, port);
    if (isFailure(offered)) return this.failHello(offered, record, address, port);
    // RFC 7627 5.3: an EMS session offered for resumption without EMS in the hello: abort.
    if (plan === 'abort') return this.failHello({ alert: AlertDescription.handshake_failure, reason: 'extended_master_secret_required' }, record, address, port);
    const negotiated = plan?.resumes ? resumedNegotiation(ch, offered, plan.resumes.state) : offered;
    const cid = this.answerConnectionId(ch, negotiated);
    if (!cid) return this.failHello({ alert: AlertDescription.decode_error, reason: 'malformed_extension' }, record, address, port, 'connection_id');
    // Our epoch-0 sequence numbers continue past the ClientHello's: there must be room.
    if (record.sequenceNumber >= MAX_SEQUENCE_NUMBER) return this.drop('sequence_exhausted', address, port);
    // A valid cookie from an address that has a session: the device may have rebooted (RFC 6347
    // 4.2.8). The old session stays until this handshake's Finished verifies (onEstablished):
    // a replayed ClientHello with a still-valid cookie must not end it.
    pending?.close('superseded by a new ClientHello', false, 'superseded');
    if (!conn) this.evictIfFull();
    const fresh = new Connection(address, port, this.events, this.config.mtu, record.sequenceNumber + 1, cid);
    const handshake = new ServerHandshake(fresh, this.handshakeOptions, ch, initial.messageSeq, initial.body, negotiated, plan);
    fresh.attachHandshake(handshake);
    this.pending.set(fresh.key, fresh);
    handshake.start();
  }

  /**
   * RFC 9146 section 3, the one change to the ServerHello: with CID on and a connection_id
   * offer, a fresh CID of ours goes into the ServerHello's extensions. The CIDs both sides
   * settled on, or undefined for a malformed offer (decode_error).
   */
  private answerConnectionId(ch: ClientHello, negotiated: Negotiated): CidUse | undefined {
    const answer = serverCidForClientHello(ch.extensions, this.cidFactory, this.cidRouting?.route ?? 0, (c) => this.byCid.has(c.toString('latin1')));
    if (!answer.ok) return undefined;
    if (answer.extension) negotiated.extensions.push(answer.extension);
    return answer.use;
  }

  private connectionEvents() {
    return {
      sendDatagram: (d: Buffer, address: string, port: number, via: number | undefined) => {
        if (via !== undefined && this.cidRouting?.via) this.cidRouting.via(via, d, address, port);
        else this.sendTo(d, port, address);
      },
      onEstablished: (conn: Connection, r: HandshakeResult) => {
        const { address, port } = conn;
        if (this.pending.get(conn.key) === conn) this.pending.delete(conn.key);
        // The new handshake verified: now, and only now, it replaces the old session (4.2.8).
        this.connections.get(conn.key)?.close('replaced by a new handshake', false);
        this.connections.set(conn.key, conn);
        this.established.add(conn);
        if (conn.cid.readCid) this.byCid.set(conn.cid.readCid.toString('latin1'), conn);
        this.stats.handshakesOk++;
        const identity = r.identity.toString('utf8');
        const kind = handshakeKind(r.resumed);
        if (r.resumable) this.sessionCache?.add(r.sessionId, r.resumable);
        // One line per resumption (docs/resumption.md); never the ticket or the session ID.
        this.log.info({ address, port, identity, pskTag: r.pskTag, suite: r.suiteName, ms: r.durationMs, kind }, r.resumed ? 'session resumed' : 'handshake ok');
        this.emitHandshake({ address, port, identity, pskTag: r.pskTag, cipherSuite: r.suiteName, durationMs: r.durationMs, result: 'ok', kind });
        this.emit('session', conn, r);
        this.emit('session-open', conn);
      },
      onData: (conn: Connection, data: Buffer) => {
        this.emit('session-data', conn, data);
      },
      onRefused: (conn: Connection, what: DropReason) => {
        // Authenticated (epoch 1): a real peer's request, so info, not debug.
        this.stats.dropped[what] = (this.stats.dropped[what] ?? 0) + 1;
        this.log.info({ address: conn.address, port: conn.port, reason: what }, 'renegotiation refused');
      },
      onUnprovenSendHeld: () => {
        this.stats.heldForUnprovenAddress++;
      },
      onPeerAddress: (conn: Connection, verdict: 'moved' | 'kept', from: PeerAddress, previous: PeerAddress) => this.onPeerAddress(conn, verdict, from, previous),
      onClosed: (conn: Connection, reason: string, failure: HandshakeFailure | undefined, fatal: boolean) => {
        const { address, port } = conn;
        if (this.connections.get(conn.key) === conn) this.connections.delete(conn.key);
        if (fatal) this.forgetSession(conn);
        if (this.pending.get(conn.key) === conn) this.pending.delete(conn.key);
        this.established.delete(conn);
        const cidKey = conn.cid.readCid?.toString('latin1');
        if (cidKey !== undefined && this.byCid.get(cidKey) === conn) this.byCid.delete(cidKey);
        if (failure) {
          this.stats.handshakesFailed++;
          const f = conn.failedHandshake;
          const identity = f?.identity?.toString('utf8');
          const cipherSuite = f?.suiteName;
          this.log.info({ address, port, identity, suite: cipherSuite, reason: failure, detail: f?.detail }, 'handshake failed');
          this.emitHandshake({ address, port, identity, cipherSuite, durationMs: Date.now() - conn.createdAt, result: 'failed', reason: failure, detail: f?.detail });
        } else {
          this.log.debug({ address, port, reason }, 'session closed');
        }
        // A failed handshake closes no session (a session may still live on that address:port,
        // RFC 6347 4.2.8).
        if (!failure) this.emit('session-close', conn, reason);
      },
    };
  }

  /**
   * RFC 5246 7.2.2: "any connection terminated with a fatal alert MUST NOT be resumed", whoever
   * sent the alert (a failed abbreviated handshake included: it is the resumed session's
   * connection, 7.4.9). The session cache forgets it. A ticket issued for the session cannot
   * be revoked (RFC 5077: the server keeps no state) and resumes it until the ticket expires.
   */
  private forgetSession(conn: Connection): void {
    const id = conn.cachedSessionId;
    if (id) this.sessionCache?.delete(id);
  }

  /**
   * A session's peer moved (RFC 9146 section 6, decided in connection.ts): the address map
   * follows it. A session without CID still holding the new address:port lost its peer (the
   * NAT gave that port to this device), so it ends; one with a CID stays reachable by its CID.
   */
  private onPeerAddress(conn: Connection, verdict: 'moved' | 'kept', from: PeerAddress, previous: PeerAddress): void {
    if (verdict === 'kept') {
      this.stats.addressUpdatesRejected++;
      if (this.log.isLevelEnabled('debug')) this.log.debug({ identity: conn.identityText, address: previous.address, port: previous.port, from: `${from.address}:${from.port}` }, 'peer address kept: record not newer');
      return;
    }
    this.stats.addressUpdates++;
    const oldKey = peerKey(previous.address, previous.port);
    if (this.connections.get(oldKey) === conn) this.connections.delete(oldKey);
    const other = this.connections.get(conn.key);
    if (other && other !== conn && !other.cid.readCid) other.close('its address was taken by a moved session', false);
    this.connections.set(conn.key, conn);
    this.log.info({ identity: conn.identityText, from: `${previous.address}:${previous.port}`, to: `${conn.address}:${conn.port}` }, 'peer address changed');
    this.emit('session-address', conn, previous);
  }

  /**
   * A datagram made elsewhere (another node's session, whose peer's flow reaches this server),
   * sent as it is from this server's socket, so that the peer's NAT and load balancer see the
   * address it sent to.
   */
  sendDatagram(datagram: Buffer, address: string, port: number): void {
    this.sendTo(datagram, port, address);
  }

  private sendTo(datagram: Buffer, port: number, address: string): void {
    if (!this.socket) return;
    if (!this.tracking) return this.socket.send(datagram, port, address);
    this.sending++;
    this.socket.send(datagram, port, address, this.sent);
  }

  private sendHelloVerifyRequest(cookie: Buffer, messageSeq: number, recordSeq: number, address: string, port: number): void {
    // RFC 6347 4.2.1: the HelloVerifyRequest reuses the ClientHello's message_seq and record
    // sequence number, and says DTLS 1.0 so that any client version can read it.
    const hvr = encodeHandshake(HandshakeType.hello_verify_request, messageSeq, encodeHelloVerifyRequest({ cookie }));
    this.sendTo(encodeRecord(ContentType.handshake, DTLS_1_0, 0, recordSeq, hvr), port, address);
  }

  private sendPlainAlert(description: number, recordSeq: number, address: string, port: number): void {
    this.sendTo(encodeRecord(ContentType.alert, DTLS_1_0, 0, recordSeq, encodeAlert(AlertLevel.fatal, description)), port, address);
  }

  private emitHandshake(e: HandshakeEvent): void {
    this.emit('handshake', e);
  }

  /**
   * Counts a drop and logs it at debug: drops are unauthenticated noise (a flood must not fill
   * the log at info), and at debug each still says who and why.
   */
  /** A bug, not a peer's fault: counted as an `internal` drop and logged, and everyone else is still served. */
  private internalError(what: string, err: unknown, fields: Record<string, unknown> = {}): void {
    this.drop('internal');
    this.log.error({ err: err instanceof Error ? err.message : String(err), ...fields }, what);
  }

  private drop(reason: DropReason, address?: string, port?: number, detail?: string): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
    // Checked first: under a flood, not even the log object is built unless debug is on.
    if (address !== undefined && this.log.isLevelEnabled('debug')) this.log.debug({ address, port, reason, detail }, 'datagram dropped');
  }

  /** Refused at once, with an alert, so the device backs off instead of retransmitting. */
  /** A cookie-verified ClientHello this server cannot answer: a fatal alert in epoch 0, counted and logged. */
  private failHello(f: NegotiationFailure, record: DTLSRecord, address: string, port: number, detail?: string): void {
    this.sendPlainAlert(f.alert, record.sequenceNumber, address, port);
    this.stats.handshakesFailed++;
    const why = detail === undefined ? { reason: f.reason } : { reason: f.reason, detail };
    this.log.info({ address, port, ...why }, 'handshake failed');
    this.emitHandshake({ address, port, durationMs: 0, result: 'failed', ...why });
  }

  private refuseHello(reason: 'handshake_limit' | 'key_lookup_queue_full', record: DTLSRecord, address: string, port: number): void {
    this.drop(reason, address, port);
    this.sendPlainAlert(AlertDescription.internal_error, record.sequenceNumber, address, port);
  }

  /** Resumption off: a plan with nothing (the client's ticket or session ID is ignored). */
  private planResumption(ch: ClientHello, negotiated: Negotiated): ResumptionPlan | 'abort' | undefined {
    if (!this.config.resumption) return undefined;
    const refused = this.pskRefused;
    return planResumption(ch, negotiated, {
      ring: this.ticketKeys(),
      cache: this.sessionCache,
      lifetimeMs: this.config.ticketLifetimeMs,
      serverSuites: this.config.cipherSuites,
      refused: refused && ((identity) => refused(identity) !== undefined),
    });
  }

  /** Idle sessions and stalled handshakes are closed here, once a second, not by a timer each. */
  private sweep(): void {
    const now = Date.now();
    this.helloFragments.sweep();
    for (const conn of [...this.pending.values()]) {
      if (now - conn.createdAt > this.config.handshakeTimeoutMs) conn.close('handshake timeout', false, 'handshake_timeout');
    }
    for (const conn of [...this.established]) {
      if (now - conn.lastActivity > this.config.idleTimeoutMs) conn.close('idle timeout', true);
    }
  }

  /** At the session limit, the session idle the longest makes room for the newcomer. */
  private evictIfFull(): void {
    if (this.established.size < this.config.maxSessions) return;
    let idlest: Connection | undefined;
    for (const c of this.established) {
      if (!idlest || c.lastActivity < idlest.lastActivity) idlest = c;
    }
    idlest?.close('evicted: session limit', true);
  }
}

/**
 * The socket only ever sends to addresses its datagrams came from: literal IPs. node's default
 * lookup answers those through dns.lookup on the next tick, a closure and a tick per datagram;
 * this one answers at once. A host name (never passed here) still goes to the resolver.
 */
function literalAddressLookup(
  address: string,
  family: unknown,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const kind = isIP(address);
  if (kind !== 0) return callback(null, address, kind);
  dnsLookup(address, { family: family === 6 ? 6 : 4 }, callback);
}

function handshakeKind(resumed: ResumedKind | undefined): HandshakeKind {
  return resumed === 'id' ? 'resumed_id' : resumed === 'ticket' ? 'resumed_ticket' : 'full';
}

/**
 * The default ticket keys: one random secret per process, replaced once a lifetime has passed,
 * the previous one kept so that every ticket still in its lifetime opens. Tickets then resume
 * only on the process that issued them (docs/resumption.md, fallbacks).
 */
function rotatingRandomRing(lifetimeMs: number): () => TicketKeyRing {
  const ring = TicketKeyRing.random();
  let rotatedAt = Date.now();
  return () => {
    const now = Date.now();
    if (now - rotatedAt >= lifetimeMs) {
      ring.rotate(randomBytes(32));
      rotatedAt = now;
    }
    return ring;
  };
}

/** A ClientHello that fits in one record, unfragmented: the only kind answered statelessly. */
function readInitialClientHello(record: DTLSRecord): InitialHello | undefined {
  const fragments = parseHandshakeFragments(record.fragment);
  if (!fragments || fragments.length !== 1) return undefined;
  const f = fragments[0];
  if (f.msgType !== HandshakeType.client_hello || f.fragmentOffset !== 0 || f.fragmentLength !== f.length) return undefined;
  const hello = parseClientHello(f.body);
  return hello ? { hello, messageSeq: f.messageSeq, body: f.body } : undefined;
}
