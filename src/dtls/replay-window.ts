/**
 * Anti-replay window of RFC 6347 section 4.1.2.6, 64 records wide, over the 48-bit sequence
 * numbers of one epoch (make a new window when the epoch changes).
 *
 * The bitmap is indexed by `seq mod 64` rather than by distance from the highest number, so
 * moving the window right only clears the slots it passes over and never shifts 64-bit values.
 */

const WINDOW = 64;
const MAX_SEQ = 2 ** 48 - 1;

export class ReplayWindow {
  /** Highest sequence number accepted so far, -1 before the first. */
  private highest = -1;
  /** Bit (seq mod 64) set when that number inside the window was accepted; two 32-bit words. */
  private readonly bits = new Uint32Array(2);

  /** True for a number already accepted, one too old for the window, or one that is not a 48-bit integer. */
  isDuplicate(seq: number): boolean {
    if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) return true;
    if (seq > this.highest) return false;
    if (this.highest - seq >= WINDOW) return true;
    return this.test(seq);
  }

  /** Marks `seq` received; call only once the record authenticated, so forgeries cannot move the window. */
  accept(seq: number): void {
    if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) return;
    if (seq > this.highest) {
      if (seq - this.highest >= WINDOW) {
        this.bits.fill(0);
      } else {
        for (let s = this.highest + 1; s < seq; s++) this.clear(s);
      }
      this.highest = seq;
      this.set(seq);
    } else if (this.highest - seq < WINDOW) {
      this.set(seq);
    }
  }

  /** The window as numbers (graceful restart, session-export.ts): highest accepted and the 64-bit bitmap's two words. */
  snapshot(): { highest: number; bits: [number, number] } {
    return { highest: this.highest, bits: [this.bits[0]!, this.bits[1]!] };
  }

  /** A window that goes on from a snapshot(): the same records are refused as before. */
  static fromSnapshot(s: { highest: number; bits: readonly [number, number] }): ReplayWindow {
    const w = new ReplayWindow();
    w.highest = s.highest;
    w.bits[0] = s.bits[0];
    w.bits[1] = s.bits[1];
    return w;
  }

  // `& 63` is exact for 48-bit numbers: ToInt32 keeps the value modulo 2^32, a multiple of 64.
  private test(seq: number): boolean {
    const i = seq & 63;
    return ((this.bits[i >>> 5] >>> (i & 31)) & 1) === 1;
  }

  private set(seq: number): void {
    const i = seq & 63;
    this.bits[i >>> 5] |= 1 << (i & 31);
  }

  private clear(seq: number): void {
    const i = seq & 63;
    this.bits[i >>> 5] &= ~(1 << (i & 31));
  }
}
