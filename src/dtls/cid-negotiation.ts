/**
 * Who sends which CID after the connection_id exchange (RFC 9146 section 3). Each side names the
 * CID it wants to *receive*; so a side's write CID is the one the peer sent, its read CID the one
 * it sent itself. An empty CID means "do not put a CID in records to me": records in that
 * direction keep the RFC 6347 format. CIDs are used only in records protected under the keys
 * this handshake makes (epoch 1 and up); epoch-0 records never carry one.
 */

import { AlertDescription, ExtensionType } from './constants.js';
import { encodeConnectionIdExtension, parseConnectionIdExtension } from './cid.js';
import { type Extension, findExtension } from './extensions.js';
import type { CidFactory } from './cid-factory.js';
import { ownCopy } from './session-state.js';

export interface CidUse {
  /** The CID peer records to us carry (tls12_cid); undefined: they come in the plain format. */
  readCid?: Buffer;
  /** The CID our records carry (tls12_cid); undefined: we send the plain format. */
  writeCid?: Buffer;
}

export type CidOutcome = { ok: true; use: CidUse } | { ok: false; alert: number };

/**
 * Client side, on the ServerHello. `offered` is the CID the client put in its ClientHello
 * (undefined if it sent no connection_id extension). A server that answers an extension the
 * client never sent violates RFC 5246 7.4.1.4 (unsupported_extension).
 */
export function clientCidFromServerHello(offered: Buffer | undefined, serverHelloExtensions: readonly Extension[]): CidOutcome {
  const ext = findExtension(serverHelloExtensions, ExtensionType.connection_id);
  if (!ext) return { ok: true, use: {} };
  if (offered === undefined) return { ok: false, alert: AlertDescription.unsupported_extension };
  const serverCid = parseConnectionIdExtension(ext.data);
  if (serverCid === undefined) return { ok: false, alert: AlertDescription.decode_error };
  return { ok: true, use: cidUse(offered, serverCid) };
}

/**
 * Server side, on the ClientHello: whether to answer with a connection_id extension, and with
 * which CID. No factory (CID off) or no client offer: no extension, no CIDs. A malformed offer
 * is a decode_error. `inUse` tells the factory which CIDs the session table already holds; when
 * it finds no free one the handshake goes on without CID.
 */
export function serverCidForClientHello(
  clientHelloExtensions: readonly Extension[],
  factory: CidFactory | undefined,
  route = 0,
  inUse?: (cid: Buffer) => boolean,
): { ok: true; use: CidUse; extension?: Extension } | { ok: false; alert: number } {
  const ext = findExtension(clientHelloExtensions, ExtensionType.connection_id);
  if (!ext) return { ok: true, use: {} };
  const clientCid = parseConnectionIdExtension(ext.data);
  if (clientCid === undefined) return { ok: false, alert: AlertDescription.decode_error };
  if (!factory) return { ok: true, use: {} };
  const ours = factory.create(route, inUse);
  if (!ours) return { ok: true, use: {} };
  return { ok: true, use: cidUse(ours, clientCid), extension: encodeConnectionIdExtension(ours) };
}

function cidUse(mine: Buffer, theirs: Buffer): CidUse {
  const use: CidUse = {};
  if (mine.length > 0) use.readCid = ownCopy(mine);
  if (theirs.length > 0) use.writeCid = ownCopy(theirs);
  return use;
}
