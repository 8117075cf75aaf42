/**
 * Peer address update for a session with Connection ID (RFC 9146 section 6). With CIDs a record
 * finds its session whatever its source address, so the session must decide when replies go to
 * a new address. RFC 9146 lets the address change only when the record that brings it
 *   1. authenticated under the session's keys (the caller calls this only for such records,
 *      after the replay window accepted them), and
 *   2. is newer, by epoch and then sequence number, than the newest record seen so far, so a
 *      reordered or replayed older record cannot move the session back or elsewhere, and
 *   3. there is a way to make sure the new address really receives: the RFC leaves it open.
 *
 * Our answer to 3 is QUIC's (RFC 9000 8.1): until the new address has proven itself we send it
 * at most `amplificationFactor` times the bytes that arrived from it, and it proves itself with
 * one more newer authenticated record from it after we have answered it (sent, or held back as
 * too large) something. A device behind a rebound NAT does that with its next request, ACK or
 * retransmission; someone who sent one captured record from a spoofed address gets a victim at
 * most three times that record's size. This is weaker than QUIC's challenge: an on-path
 * attacker who re-sends two fresh records of the device from a victim's address validates it
 * (off-path, it has no fresh records to send). (DTLS 1.2 has
 * no address-validation message but RFC 9853's return routability check, which device stacks do
 * not implement yet.)
 */

export interface PeerAddress {
  readonly address: string;
  readonly port: number;
  /**
   * The path the record came by, opaque here (a cluster node that passed it on, see
   * CidRouting.via); undefined: straight from the peer. Replies take the path of the newest
   * authenticated record, which the address rules below also decide.
   */
  readonly via?: number;
}

/** 'same': from the current address. 'moved': the session now answers `from`. 'kept': from
 *  another address but not newer than the newest record, so the address stays (count it as a
 *  rejected address update; the record's data is still good). */
export type AddressVerdict = 'same' | 'moved' | 'kept';

export const DEFAULT_AMPLIFICATION_FACTOR = 3;

export class PeerAddressTracker {
  private current: PeerAddress;
  private newestEpoch = -1;
  private newestSeq = -1;
  /** Bytes we may still send to an address that has not proven itself; Infinity once it has. */
  private budget = Infinity;
  private sentSinceMove = false;

  constructor(
    initial: PeerAddress,
    private readonly amplificationFactor = DEFAULT_AMPLIFICATION_FACTOR,
  ) {
    this.current = { address: initial.address, port: initial.port, via: initial.via };
  }

  get address(): PeerAddress {
    return this.current;
  }

  /** True unless the session moved and the new address has not proven itself yet. */
  get validated(): boolean {
    return this.budget === Infinity;
  }

  /** For every record that authenticated and passed the replay window. */
  onAuthenticated(from: PeerAddress, epoch: number, seq: number, datagramBytes: number): AddressVerdict {
    const newer = epoch > this.newestEpoch || (epoch === this.newestEpoch && seq > this.newestSeq);
    if (newer) {
      this.newestEpoch = epoch;
      this.newestSeq = seq;
    }
    if (from.address === this.current.address && from.port === this.current.port) {
      // Same peer address by another path (the load balancer sent the flow to another node):
      // the path changes with a newer record only, and proves nothing new about the address.
      if (newer && from.via !== this.current.via) this.current = { address: from.address, port: from.port, via: from.via };
      if (!this.validated) {
        if (newer && this.sentSinceMove) this.budget = Infinity;
        else this.budget += this.amplificationFactor * datagramBytes;
      }
      return 'same';
    }
    if (!newer) return 'kept';
    this.current = { address: from.address, port: from.port, via: from.via };
    this.budget = this.amplificationFactor * datagramBytes;
    this.sentSinceMove = false;
    return 'moved';
  }

  /**
   * Whether a datagram of `bytes` may go to the current address now; counts it against the
   * budget of an address not yet proven. A refused datagram is dropped by the caller: the
   * device's retransmission proves the address, and CoAP's (or the device's) brings it again.
   */
  maySend(bytes: number): boolean {
    if (this.validated) return true;
    // A refused datagram counts as an answer too: otherwise a first reply larger than the budget
    // (a 1 KiB Block2 response to a 40-byte request) would keep the address unproven for good.
    // The peer's next newer record (its retransmission) then proves the address.
    this.sentSinceMove = true;
    if (bytes > this.budget) return false;
    this.budget -= bytes;
    return true;
  }
}
