/**
 * The seam between the key store (`src/keys`, which knows no protocol) and the DTLS layer's own
 * contract (`src/dtls/psk.ts`, which knows no key store): a KeyResolver as a PskLookup, with
 * the master key's label as the opaque tag.
 */
import type { PskLookup, PskRefusal } from './dtls/psk.js';
import type { KeyResolver } from './keys/types.js';

/**
 * `refusal` is asked only when the resolver found no key, to name why (a deny-list hit, an
 * identity the pattern refuses); without an answer the refusal is unknown_psk_identity.
 */
export function pskLookupFromResolver(resolver: KeyResolver, refusal?: (identity: Buffer) => PskRefusal | undefined): PskLookup {
  return async (identity) => {
    const found = await resolver.resolve(identity);
    if (found.length > 0) return found.map((c) => ({ psk: c.psk, tag: c.keyLabel }));
    return { refused: refusal?.(identity) ?? 'unknown_psk_identity' };
  };
}
