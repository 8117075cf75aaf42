/**
 * Ticket keys with rotation (RFC 5077 section 4 and 5.5). A ticket names the key that sealed it
 * (key_name), so a ring of the current key and the previous ones opens every ticket still in
 * its lifetime while only the current key seals. Each key comes from one 32-byte secret: the
 * name, the AES-128 key and the HMAC-SHA-256 key are HKDF-SHA-256 outputs of it, so servers that
 * share a secret (workers, nodes; see docs/resumption.md for where it comes from) share the key
 * and its name, and the name says nothing about the keys.
 */

import { type KeyObject, createSecretKey, hkdfSync, randomBytes } from 'node:crypto';

export const TICKET_KEY_SECRET_LENGTH = 32;
export const KEY_NAME_LENGTH = 16;
const HKDF_INFO = Buffer.from('coap-psk-resolver ticket key v1');

export interface TicketKey {
  readonly name: Buffer;
  readonly aesKey: KeyObject;
  readonly hmacKey: KeyObject;
}

export function deriveTicketKey(secret: Buffer): TicketKey {
  if (secret.length !== TICKET_KEY_SECRET_LENGTH) {
    throw new RangeError(`ticket key secret must be ${TICKET_KEY_SECRET_LENGTH} bytes`); // never the secret itself
  }
  const okm = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), HKDF_INFO, KEY_NAME_LENGTH + 16 + 32));
  const key = {
    name: Buffer.from(okm.subarray(0, KEY_NAME_LENGTH)),
    aesKey: createSecretKey(okm.subarray(KEY_NAME_LENGTH, KEY_NAME_LENGTH + 16)),
    hmacKey: createSecretKey(okm.subarray(KEY_NAME_LENGTH + 16)),
  };
  okm.fill(0);
  return key;
}

export class TicketKeyRing {
  private keys: TicketKey[];

  /** `secrets[0]` seals; all of them open. At least one. */
  constructor(secrets: readonly Buffer[]) {
    if (secrets.length === 0) throw new RangeError('a ticket key ring needs at least one key');
    this.keys = secrets.map(deriveTicketKey);
  }

  /** A ring of one fresh random key: tickets then resume only on this process, until it ends. */
  static random(): TicketKeyRing {
    return new TicketKeyRing([randomBytes(TICKET_KEY_SECRET_LENGTH)]);
  }

  get current(): TicketKey {
    return this.keys[0]!;
  }

  /** The key a ticket's key_name names; undefined for a retired or foreign key. */
  find(name: Buffer): TicketKey | undefined {
    return this.keys.find((k) => k.name.equals(name));
  }

  /**
   * `secret` becomes the sealing key; the `keepPrevious` keys before it still open tickets
   * (1 by default: rotate at least one ticket lifetime apart and no live ticket is lost).
   */
  rotate(secret: Buffer, keepPrevious = 1): void {
    this.keys = [deriveTicketKey(secret), ...this.keys.slice(0, keepPrevious)];
  }
}
