/**
 * The handshake hash (RFC 5246 7.4.9; in DTLS over every handshake message as if it had been
 * sent unfragmented, with its 12-byte header, RFC 6347 4.2.6), readable at any point: the
 * session hash after ClientKeyExchange (RFC 7627), and before each Finished.
 *
 * On the JavaScript SHA-256 (sha256.ts): the messages of a handshake are ~300 bytes, five or six
 * compressions, where node's Hash made a native call per message and a native object per read.
 * The header is hashed from a scratch buffer, so no message is copied whole to be hashed.
 */
import { HANDSHAKE_HEADER_LENGTH } from './constants.js';
import { writeHandshakeHeader } from './handshake/header.js';
import { Sha256 } from './sha256.js';

/** Written and hashed at once: add() runs to its end synchronously. */
const HEADER = Buffer.alloc(HANDSHAKE_HEADER_LENGTH);

export class Transcript {
  private readonly hash = new Sha256();

  /** One whole handshake message, from its type, message_seq and body. */
  add(msgType: number, messageSeq: number, body: Buffer): void {
    writeHandshakeHeader(HEADER, 0, msgType, body.length, messageSeq, 0, body.length);
    this.hash.update(HEADER).update(body);
  }

  /** SHA-256 of the messages added so far; more may follow. */
  digest(): Buffer {
    return this.hash.digest();
  }
}
