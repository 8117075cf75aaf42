/**
 * The messages nodes of a cluster exchange on their internal UDP port (docs/cluster.md): a DTLS
 * datagram forwarded to the node that owns its session (FORWARD), the owner's datagram sent back
 * through the node that received the device's record (BACKWARD), and the node's announcement of
 * its id (HELLO). Sent and received by forward-link.ts, for node-routing.ts.
 *
 *   0      version = 1
 *   1      type (1 FORWARD, 2 BACKWARD, 3 HELLO)
 *   2..3   sender node id
 *   4..11  sender's clock, ms since 1970
 *   12     device address family: 4, 6 (FORWARD, BACKWARD) or 0 (HELLO)
 *   13..14 device port
 *   15..   device address, 4 or 16 bytes (none for HELLO)
 *   ..     payload (the DTLS datagram; empty for HELLO)
 *   last 16 bytes: HMAC-SHA256(forward key, all bytes before)[0..16]
 *
 * Every message is authenticated with a key every node derives from the cluster key file, so
 * a datagram from a host without that key is never taken for a device's. Decoding returns
 * undefined, never throws, for anything malformed, stale or unauthenticated; the payload it
 * returns is a view of the datagram, not a copy.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

export const FORWARD_WIRE_VERSION = 1;
export const MAC_LENGTH = 16;
export const HEADER_LENGTH = 15;
/** Node ids fit the 10 bits the CID route gives them (docs/cluster.md). */
export const MAX_NODE_ID = 1023;
/** A message whose clock differs from the receiver's by more is dropped (bounds replays). */
export const DEFAULT_FRESHNESS_MS = 5000;
/** Shortest cluster key accepted: 256 bits. */
export const MIN_CLUSTER_KEY_LENGTH = 32;

export const ForwardType = { FORWARD: 1, BACKWARD: 2, HELLO: 3 } as const;
export type ForwardType = (typeof ForwardType)[keyof typeof ForwardType];

export interface DeviceAddress {
  address: string;
  port: number;
}

export interface ForwardMessage {
  type: ForwardType;
  senderNode: number;
  /** Sender's clock (ms since 1970) when it made the message. */
  timestampMs: number;
  /** The device the payload came from (FORWARD) or goes to (BACKWARD); absent for HELLO. */
  device?: DeviceAddress;
  payload: Buffer;
}

const HKDF_SALT = Buffer.from('coap-psk cluster v1', 'utf8');

/**
 * The MAC key of these messages: HKDF-SHA256 (RFC 5869) of the cluster key, salt
 * "coap-psk cluster v1", info "forward". Other keys of the cluster (the CID route mask) use
 * other infos of the same derivation, so one file serves them without reusing a key.
 */
export function deriveClusterKey(clusterKey: Buffer, info: 'forward' | 'cid-route'): Buffer {
  if (clusterKey.length < MIN_CLUSTER_KEY_LENGTH) throw new RangeError(`cluster key shorter than ${MIN_CLUSTER_KEY_LENGTH} bytes`);
  return Buffer.from(hkdfSync('sha256', clusterKey, HKDF_SALT, Buffer.from(info, 'utf8'), 32));
}

function addressBytes(device: DeviceAddress): { family: 4 | 6; bytes: Buffer } {
  // node:net decides what is an address (ipaddr.js alone also takes forms such as "0x7f.1").
  const family = isIPv4(device.address) ? 4 : isIPv6(device.address) ? 6 : 0;
  if (family === 0) throw new RangeError(`not an IP address: ${device.address}`);
  return { family, bytes: Buffer.from(ipaddr.parse(device.address).toByteArray()) };
}

function mac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest().subarray(0, MAC_LENGTH);
}

/** The message as bytes, MAC included. Throws RangeError for values that have no encoding. */
export function encodeForwardMessage(key: Buffer, msg: ForwardMessage): Buffer {
  if (!Number.isInteger(msg.senderNode) || msg.senderNode < 0 || msg.senderNode > MAX_NODE_ID) {
    throw new RangeError(`node id ${msg.senderNode}: must be 0..${MAX_NODE_ID}`);
  }
  if (!Number.isSafeInteger(msg.timestampMs) || msg.timestampMs < 0) throw new RangeError('timestamp must be a non-negative integer');
  const hello = msg.type === ForwardType.HELLO;
  if (hello !== (msg.device === undefined)) throw new RangeError('HELLO carries no device address; FORWARD and BACKWARD carry one');
  if (hello && msg.payload.length > 0) throw new RangeError('HELLO carries no payload');
  const addr = msg.device ? addressBytes(msg.device) : { family: 0, bytes: Buffer.alloc(0) };
  const port = msg.device?.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`port ${port}`);
  const out = Buffer.alloc(HEADER_LENGTH + addr.bytes.length + msg.payload.length + MAC_LENGTH);
  out[0] = FORWARD_WIRE_VERSION;
  out[1] = msg.type;
  out.writeUInt16BE(msg.senderNode, 2);
  out.writeBigUInt64BE(BigInt(msg.timestampMs), 4);
  out[12] = addr.family;
  out.writeUInt16BE(port, 13);
  addr.bytes.copy(out, HEADER_LENGTH);
  msg.payload.copy(out, HEADER_LENGTH + addr.bytes.length);
  const macAt = out.length - MAC_LENGTH;
  mac(key, out.subarray(0, macAt)).copy(out, macAt);
  return out;
}

export interface DecodeOptions {
  /** The receiver's clock, ms since 1970. */
  nowMs: number;
  freshnessMs?: number;
}

/** The message, or undefined when it is malformed, of another version, stale or not authentic. */
export function decodeForwardMessage(key: Buffer, datagram: Buffer, options: DecodeOptions): ForwardMessage | undefined {
  if (datagram.length < HEADER_LENGTH + MAC_LENGTH || datagram[0] !== FORWARD_WIRE_VERSION) return undefined;
  const macAt = datagram.length - MAC_LENGTH;
  // Authenticity first: nothing of an unauthenticated message is looked at further.
  if (!timingSafeEqual(mac(key, datagram.subarray(0, macAt)), datagram.subarray(macAt))) return undefined;
  const type = datagram[1] as ForwardType;
  const family = datagram[12];
  const addrLength = family === 4 ? 4 : family === 6 ? 16 : family === 0 ? 0 : -1;
  if (addrLength < 0 || HEADER_LENGTH + addrLength > macAt) return undefined;
  const hello = type === ForwardType.HELLO;
  if (!hello && type !== ForwardType.FORWARD && type !== ForwardType.BACKWARD) return undefined;
  // HELLO: no address and no payload; FORWARD and BACKWARD: an address.
  if (hello !== (family === 0) || (hello && macAt !== HEADER_LENGTH)) return undefined;
  const senderNode = datagram.readUInt16BE(2);
  if (senderNode > MAX_NODE_ID) return undefined;
  const timestamp = datagram.readBigUInt64BE(4);
  if (timestamp > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const timestampMs = Number(timestamp);
  if (Math.abs(options.nowMs - timestampMs) > (options.freshnessMs ?? DEFAULT_FRESHNESS_MS)) return undefined;
  const port = datagram.readUInt16BE(13);
  const addr = datagram.subarray(HEADER_LENGTH, HEADER_LENGTH + addrLength);
  const device = family === 0 ? undefined : { address: ipaddr.fromByteArray([...addr]).toString(), port };
  return { type, senderNode, timestampMs, ...(device ? { device } : {}), payload: datagram.subarray(HEADER_LENGTH + addrLength, macAt) };
}
