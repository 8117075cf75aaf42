/**
 * Graceful restart (docs/graceful-restart.md): the established sessions of one DtlsServer as
 * bytes, and those bytes as established sessions of another, so that a new process answers
 * the peers' next records without a new handshake.
 *
 * Per session, the record layer's state (RFC 6347 4.1: read and write epoch, next write
 * sequence number, the read epoch's replay window, 4.1.2.6) and what re-derives its keys: suite,
 * master secret and both randoms (RFC 5246 6.3 key_block), the encrypt-then-MAC flag, the
 * Connection IDs (RFC 9146, format 2). Keys are derived again on import rather than carried, so
 * the format holds one secret per session.
 *
 * The bytes hold every session's master secret: the caller seals them (takeover.ts) and zeroes
 * them after use. Format (ours, versions 1 and 2), all integers big-endian:
 *
 *   uint8  format (1 or 2); uint32 count; then per session, opaque session<1..2^16-1> in
 *   format 1, opaque session<1..2^24-1> in format 2:
 *     opaque address<1..255> (UTF-8 text); uint16 port
 *     uint16 cipher_suite; uint8 flags: bit 0 extended_master_secret, bit 1 encrypt_then_mac
 *     opaque master_secret[48]; opaque client_random[32]; opaque server_random[32]
 *     opaque identity<0..2^16-1>; opaque psk_tag<0..255>
 *     uint16 read_epoch; uint16 write_epoch; uint48 next_write_seq
 *     uint48 window_highest_plus_one (0: nothing received yet); uint32 window_bits[2]
 *     uint48 last_activity (ms since 1970)
 *     opaque own_cid<0..255>; opaque peer_cid<0..255>   RFC 9146: the CID the peer's records
 *                                                        carry to us, the one ours carry to it
 *                                                        (empty: none). Format 1 has them empty
 *                                                        (its writer did not export CID
 *                                                        sessions); its reader refuses others
 *     format 2 only: opaque app_state<0..2^24-1>         what the layer above keeps of the
 *                                                        session (src/coap/handover.ts), opaque
 *                                                        here; empty: none
 */
import { CIPHER_SUITES } from './ciphers/index.js';
import type { Connection } from './connection.js';
import { deriveKeyBlock } from './prf.js';
import { MAX_SEQUENCE_NUMBER } from './record.js';
import { RecordLayer, type RecordLayerSnapshot } from './record-layer.js';
import type { HandshakeResult } from './server-handshake.js';
import type { DtlsServer } from './server.js';
import type { DtlsSession } from './session.js';
import { MASTER_SECRET_LENGTH, ownCopy } from './session-state.js';
import { decode, malformed, u16, u8, vector } from './wire.js';

/** Format 1: the DTLS state only; format 2 adds the application's state per session. */
export type ExportFormat = 1 | 2;
export const CURRENT_FORMAT: ExportFormat = 2;
const MAX_APP_STATE = 0xffffff - 0xffff;
const RANDOM_LENGTH = 32;
const FLAG_EMS = 1;
const FLAG_ETM = 2;

export interface ExportedSession {
  readonly address: string;
  readonly port: number;
  readonly cipherSuite: number;
  readonly extendedMasterSecret: boolean;
  readonly encryptThenMac: boolean;
  readonly masterSecret: Buffer;
  readonly clientRandom: Buffer;
  readonly serverRandom: Buffer;
  readonly identity: Buffer;
  readonly pskTag: string;
  readonly records: RecordLayerSnapshot;
  readonly lastActivity: number;
  /** RFC 9146: the CID the peer's records carry (we receive it), and the one ours carry. Format 2 only. */
  readonly ownCid?: Buffer;
  readonly peerCid?: Buffer;
  /** Format 2: the layer above's state of the session (opaque here); empty for none. */
  readonly appState?: Buffer;
}

/** What the layer above adds to an exported session, and takes back on import. */
export interface AppStateHooks {
  export?(session: DtlsSession): Buffer | undefined;
  /** Runs once the session is established here (its 'session-open' was emitted). */
  restore?(session: DtlsSession, state: Buffer): void;
}

/**
 * The state of an established session, or undefined for one that is not (or has no keys, or,
 * for format 1, uses a Connection ID).
 * `writeSeqGap`: the importer's first write sequence number is this far past ours, so that
 * records this side still sends afterwards never share a number (an AEAD nonce) with its.
 */
export function exportSession(conn: Connection, writeSeqGap = 0, format: ExportFormat = CURRENT_FORMAT): ExportedSession | undefined {
  const r = conn.session;
  const records = conn.exportRecords();
  if (!r || !records) return undefined;
  // Format 1 has no CID in it: a session that negotiated one is not handed over (its device
  // handshakes again) rather than carried on in a form its records cannot reach.
  const { readCid, writeCid } = conn.cid;
  if (format === 1 && (readCid !== undefined || writeCid !== undefined)) return undefined;
  return {
    ...(readCid ? { ownCid: readCid } : {}),
    ...(writeCid ? { peerCid: writeCid } : {}),
    address: conn.address,
    port: conn.port,
    cipherSuite: r.cipherSuite,
    extendedMasterSecret: r.extendedMasterSecret,
    encryptThenMac: r.encryptThenMac,
    masterSecret: r.masterSecret,
    clientRandom: r.clientRandom,
    serverRandom: r.serverRandom,
    identity: r.identity,
    pskTag: r.pskTag,
    records: { ...records, writeSeq: Math.min(records.writeSeq + writeSeqGap, MAX_SEQUENCE_NUMBER) },
    lastActivity: conn.lastActivity,
  };
}

/** Makes `s` an established session of `server`; undefined when its suite is unknown here. */
export function importSession(server: DtlsServer, s: ExportedSession): Connection | undefined {
  const suite = CIPHER_SUITES.get(s.cipherSuite);
  if (!suite) return undefined;
  return server.adopt(s.address, s.port, { readCid: s.ownCid, writeCid: s.peerCid }, (conn) => {
    const keys = deriveKeyBlock(s.masterSecret, s.clientRandom, s.serverRandom, suite);
    const opts = { encryptThenMac: s.encryptThenMac };
    // The server reads what the client writes and writes with the server's keys (RFC 5246 6.3).
    const records = RecordLayer.restore(s.records, suite.createProtection(keys.client, opts), suite.createProtection(keys.server, opts), suite.maxExpansion);
    const result: HandshakeResult = {
      identity: s.identity,
      pskTag: s.pskTag,
      suiteName: suite.name,
      // The final flight is not carried: a client still retransmitting its flight 5 across a
      // restart gets no second Finished and handshakes again once its timer gives up.
      finalFlight: [],
      masterSecret: s.masterSecret,
      clientRandom: s.clientRandom,
      serverRandom: s.serverRandom,
      cipherSuite: s.cipherSuite,
      extendedMasterSecret: s.extendedMasterSecret,
      encryptThenMac: s.encryptThenMac,
      // Not in this process's session cache: a later resumption by ID falls back to a full
      // handshake (a ticket still resumes where the ticket keys are shared).
      sessionId: Buffer.alloc(0),
      durationMs: 0,
    };
    conn.restoreEstablished(records, result, s.lastActivity);
    return true;
  });
}

/** Format 1 carries no application state: `appState` is left out there. */
export function encodeSessions(sessions: readonly ExportedSession[], format: ExportFormat = CURRENT_FORMAT): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(sessions.length);
  const lengthBytes = format === 1 ? 2 : 3;
  return Buffer.concat([u8(format), count, ...sessions.map((s) => vector(lengthBytes, encodeOne(s, format), 1, lengthBytes === 2 ? 0xffff : 0xffffff, 'session'))]);
}

/** Undefined for anything malformed or of an unknown format. Buffers returned are copies. */
export function parseSessions(buf: Buffer): ExportedSession[] | undefined {
  return decode(buf, (r) => {
    const format = r.u8();
    if (format !== 1 && format !== 2) malformed();
    const count = r.u16() * 0x10000 + r.u16();
    const out: ExportedSession[] = [];
    for (let i = 0; i < count; i++) {
      const one = parseOne(format === 1 ? r.vector(2, 1, 0xffff) : r.vector(3, 1, 0xffffff), format);
      if (!one) malformed();
      out.push(one);
    }
    r.end();
    return out;
  });
}

/** Exports every established session of `server` as bytes (see the format above). */
export function exportServerSessions(server: DtlsServer, writeSeqGap = 0, format: ExportFormat = CURRENT_FORMAT, app: AppStateHooks = {}): { bytes: Buffer; count: number } {
  const sessions: ExportedSession[] = [];
  for (const conn of server.establishedSessions()) {
    const s = exportSession(conn, writeSeqGap, format);
    if (!s) continue;
    const appState = format === 2 ? app.export?.(conn) : undefined;
    sessions.push(appState && appState.length <= MAX_APP_STATE ? { ...s, appState } : s);
  }
  return { bytes: encodeSessions(sessions, format), count: sessions.length };
}

/** Imports every session of `bytes` into `server`; the number imported, or undefined when malformed. */
export function importServerSessions(server: DtlsServer, bytes: Buffer, app: AppStateHooks = {}): number | undefined {
  const sessions = parseSessions(bytes);
  if (!sessions) return undefined;
  let n = 0;
  for (const s of sessions) {
    // The master secret now belongs to the connection (zeroed when it closes); one refused is zeroed here.
    const conn = importSession(server, s);
    if (!conn) {
      s.masterSecret.fill(0);
      continue;
    }
    n++;
    if (s.appState && s.appState.length > 0) app.restore?.(conn, s.appState);
  }
  return n;
}

function encodeOne(s: ExportedSession, format: ExportFormat): Buffer {
  const w = s.records.window;
  const tail = Buffer.alloc(6 + 6 + 8 + 6);
  tail.writeUIntBE(s.records.writeSeq, 0, 6);
  tail.writeUIntBE(w.highest + 1, 6, 6);
  tail.writeUInt32BE(w.bits[0] >>> 0, 12);
  tail.writeUInt32BE(w.bits[1] >>> 0, 16);
  tail.writeUIntBE(Math.max(0, Math.floor(s.lastActivity)), 20, 6);
  return Buffer.concat([
    vector(1, Buffer.from(s.address, 'utf8'), 1, 255, 'address'),
    u16(s.port),
    u16(s.cipherSuite),
    u8((s.extendedMasterSecret ? FLAG_EMS : 0) | (s.encryptThenMac ? FLAG_ETM : 0)),
    fixedLength(s.masterSecret, MASTER_SECRET_LENGTH, 'master_secret'),
    fixedLength(s.clientRandom, RANDOM_LENGTH, 'client_random'),
    fixedLength(s.serverRandom, RANDOM_LENGTH, 'server_random'),
    vector(2, s.identity, 0, 0xffff, 'identity'),
    vector(1, Buffer.from(s.pskTag, 'utf8'), 0, 255, 'psk_tag'),
    u16(s.records.readEpoch),
    u16(s.records.writeEpoch),
    tail,
    vector(1, format === 2 && s.ownCid ? s.ownCid : Buffer.alloc(0), 0, 255, 'own_cid'),
    vector(1, format === 2 && s.peerCid ? s.peerCid : Buffer.alloc(0), 0, 255, 'peer_cid'),
    ...(format === 2 ? [vector(3, s.appState ?? Buffer.alloc(0), 0, MAX_APP_STATE, 'app_state')] : []),
  ]);
}

function parseOne(buf: Buffer, format: ExportFormat): ExportedSession | undefined {
  return decode(buf, (r) => {
    const address = r.vector(1, 1, 255).toString('utf8');
    const port = r.u16();
    const cipherSuite = r.u16();
    const flags = r.u8();
    if ((flags & ~(FLAG_EMS | FLAG_ETM)) !== 0) malformed();
    const masterSecret = ownCopy(r.bytes(MASTER_SECRET_LENGTH));
    const clientRandom = ownCopy(r.bytes(RANDOM_LENGTH));
    const serverRandom = ownCopy(r.bytes(RANDOM_LENGTH));
    const identity = ownCopy(r.vector(2, 0, 0xffff));
    const pskTag = r.vector(1, 0, 255).toString('utf8');
    const readEpoch = r.u16();
    const writeEpoch = r.u16();
    const writeSeq = r.u48();
    const highest = r.u48() - 1;
    const bits: [number, number] = [r.u16() * 0x10000 + r.u16(), r.u16() * 0x10000 + r.u16()];
    const lastActivity = r.u48();
    const ownCid = r.vector(1, 0, 255);
    const peerCid = r.vector(1, 0, 255);
    // Format 1 never carried a CID: one there is not a state this code wrote.
    if (format === 1 && (ownCid.length !== 0 || peerCid.length !== 0)) malformed();
    const appState = format === 2 ? ownCopy(r.vector(3, 0, MAX_APP_STATE)) : undefined;
    r.end();
    return {
      address, port, cipherSuite, masterSecret, clientRandom, serverRandom, identity, pskTag, lastActivity, appState,
      ...(ownCid.length > 0 ? { ownCid: ownCopy(ownCid) } : {}),
      ...(peerCid.length > 0 ? { peerCid: ownCopy(peerCid) } : {}),
      extendedMasterSecret: (flags & FLAG_EMS) !== 0,
      encryptThenMac: (flags & FLAG_ETM) !== 0,
      records: { readEpoch, writeEpoch, writeSeq, window: { highest, bits } },
    };
  });
}

function fixedLength(b: Buffer, length: number, what: string): Buffer {
  if (b.length !== length) throw new RangeError(`${what}: ${b.length} bytes, must be ${length}`);
  return b;
}
