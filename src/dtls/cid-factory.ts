/**
 * The CIDs this server asks its peers to send (RFC 9146 section 3): fixed length, random, and
 * with room for a route (e.g. node ‖ worker) that a dispatcher can read back without a table.
 *
 * Layout, for `length` bytes of which `routeBytes` carry the route:
 *
 *   cid = nonce[length - routeBytes] ‖ (route XOR HMAC-SHA256(secret, nonce)[0 .. routeBytes])
 *
 * Why this shape:
 * - CIDs need not be secret: a record is matched to a session by its CID but accepted only if it
 *   authenticates under that session's keys, and the peer address changes only after that
 *   (section 6). Random CIDs still keep an off-path sender from aiming at a chosen session.
 * - RFC 9146 section 8: a CID is visible on the wire and stays the same for the whole session,
 *   so an observer links a device's records across its address changes; that is the purpose.
 *   What must not happen is linking across sessions. A route written in clear (say, byte 0 =
 *   worker 3) would be the same in every CID one worker hands out, and the same for a device
 *   that is always routed to the same node. Masking it with a keyed function of the per-CID
 *   random nonce makes every CID look uniformly random to anyone without the secret, while any
 *   holder of the secret (every node and worker, the UDP dispatcher) recovers the route from the
 *   CID alone with one HMAC.
 * - The nonce keeps at least 32 random bits, so a session table of 10^5 entries sees a fresh
 *   CID collide with probability < 10^5 / 2^32; `create` checks for collisions anyway.
 *
 * The secret is one per deployment when routes are used across nodes (the cluster issues decide
 * where it comes from); by default a fresh random one per process, which is enough while every
 * CID is allocated and read by the same process.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { MAX_CID_LENGTH } from './cid.js';

export const DEFAULT_CID_LENGTH = 6;
/** Random bytes every CID keeps besides its route. */
export const MIN_CID_NONCE_LENGTH = 4;
export const MAX_ROUTE_BYTES = 4;
/** Fresh CIDs tried before `create` gives up (the caller then negotiates no CID). */
const CREATE_ATTEMPTS = 8;

export interface CidFactoryOptions {
  /** CID length in bytes: MIN_CID_NONCE_LENGTH + routeBytes .. 255. */
  length: number;
  /** Bytes of the CID that carry the route, 0..4 (0: no route). */
  routeBytes?: number;
  /** Key of the route mask; at least 16 bytes. Default: 32 random bytes. */
  secret?: Buffer;
}

export class CidFactory {
  readonly length: number;
  readonly routeBytes: number;
  private readonly nonceLength: number;
  private readonly secret: Buffer;

  constructor(options: CidFactoryOptions) {
    const routeBytes = options.routeBytes ?? 0;
    if (!Number.isInteger(routeBytes) || routeBytes < 0 || routeBytes > MAX_ROUTE_BYTES) {
      throw new RangeError(`routeBytes ${routeBytes}: must be 0..${MAX_ROUTE_BYTES}`);
    }
    const min = MIN_CID_NONCE_LENGTH + routeBytes;
    if (!Number.isInteger(options.length) || options.length < min || options.length > MAX_CID_LENGTH) {
      throw new RangeError(`CID length ${options.length}: must be ${min}..${MAX_CID_LENGTH}`);
    }
    if (options.secret !== undefined && options.secret.length < 16) throw new RangeError('CID secret shorter than 16 bytes');
    this.length = options.length;
    this.routeBytes = routeBytes;
    this.nonceLength = options.length - routeBytes;
    this.secret = Buffer.from(options.secret ?? randomBytes(32));
  }

  /**
   * A fresh CID carrying `route` (0 .. 2^(8·routeBytes) - 1), not one for which `inUse` says
   * true; undefined after a few collisions in a row (a full table), and the handshake then goes
   * on without CID. The result is memory of its own, fit to be kept as a Map key's source.
   */
  create(route = 0, inUse?: (cid: Buffer) => boolean): Buffer | undefined {
    if (!Number.isInteger(route) || route < 0 || route >= 2 ** (8 * this.routeBytes)) {
      throw new RangeError(`route ${route} does not fit ${this.routeBytes} bytes`);
    }
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
      const cid = Buffer.alloc(this.length);
      randomBytes(this.nonceLength).copy(cid, 0);
      if (this.routeBytes > 0) {
        cid.writeUIntBE(route, this.nonceLength, this.routeBytes);
        this.xorMask(cid);
      }
      if (!inUse?.(cid)) return cid;
    }
    return undefined;
  }

  /** The route a CID of this factory carries; undefined for a CID of another length. */
  routeOf(cid: Buffer): number | undefined {
    if (cid.length !== this.length) return undefined;
    if (this.routeBytes === 0) return 0;
    const copy = Buffer.from(cid);
    this.xorMask(copy);
    return copy.readUIntBE(this.nonceLength, this.routeBytes);
  }

  /** XORs HMAC(secret, nonce) into the route bytes: masking and unmasking are the same step. */
  private xorMask(cid: Buffer): void {
    const mask = createHmac('sha256', this.secret).update(cid.subarray(0, this.nonceLength)).digest();
    for (let i = 0; i < this.routeBytes; i++) cid[this.nonceLength + i]! ^= mask[i]!;
  }
}
