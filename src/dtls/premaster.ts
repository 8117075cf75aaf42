/** Premaster secrets of the PSK key exchanges. Both are other_secret ‖ psk with uint16 length prefixes. */

function lengthPrefixedPair(otherSecret: Buffer | number, psk: Buffer): Buffer {
  // A number means "that many zero bytes" (plain PSK), which saves allocating them separately.
  const otherLength = typeof otherSecret === 'number' ? otherSecret : otherSecret.length;
  const out = Buffer.alloc(4 + otherLength + psk.length);
  out.writeUInt16BE(otherLength, 0);
  if (typeof otherSecret !== 'number') otherSecret.copy(out, 2);
  out.writeUInt16BE(psk.length, 2 + otherLength);
  psk.copy(out, 4 + otherLength);
  return out;
}

/** RFC 4279 section 2: uint16 N, N zero bytes, uint16 N, the N-byte PSK. */
export function pskPremaster(psk: Buffer): Buffer {
  return lengthPrefixedPair(psk.length, psk);
}

/** RFC 5489 section 2: uint16 len(Z), Z (the ECDH shared secret), uint16 len(psk), psk. */
export function ecdhePskPremaster(z: Buffer, psk: Buffer): Buffer {
  return lengthPrefixedPair(z, psk);
}
