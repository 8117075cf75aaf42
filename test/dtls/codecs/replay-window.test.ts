import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../../src/dtls/replay-window.js';

describe('ReplayWindow (RFC 6347 4.1.2.6)', () => {
  it('accepts fresh numbers and rejects repeats', () => {
    const w = new ReplayWindow();
    expect(w.isDuplicate(0)).toBe(false);
    w.accept(0);
    expect(w.isDuplicate(0)).toBe(true);
    expect(w.isDuplicate(1)).toBe(false);
  });

  it('does not move before accept (only authenticated records count)', () => {
    const w = new ReplayWindow();
    expect(w.isDuplicate(1000)).toBe(false);
    expect(w.isDuplicate(0)).toBe(false);
  });

  it('takes out-of-order numbers inside the 64-wide window, once each', () => {
    const w = new ReplayWindow();
    w.accept(100);
    for (const s of [99, 50, 37]) {
      expect(w.isDuplicate(s), String(s)).toBe(false);
      w.accept(s);
      expect(w.isDuplicate(s), String(s)).toBe(true);
    }
    expect(w.isDuplicate(36)).toBe(true); // 100 - 36 = 64: left of the window
    expect(w.isDuplicate(38)).toBe(false);
  });

  it('forgets old marks when the window slides', () => {
    const w = new ReplayWindow();
    w.accept(5);
    w.accept(69); // 5 is now exactly out of the window
    expect(w.isDuplicate(5)).toBe(true);
    expect(w.isDuplicate(6)).toBe(false);
    w.accept(6 + 64 * 3); // a jump of more than 64 clears everything
    expect(w.isDuplicate(6 + 64 * 3 - 1)).toBe(false);
    expect(w.isDuplicate(69)).toBe(true);
  });

  it('slot reuse does not leak: a mark at seq is not seen at seq + 64', () => {
    const w = new ReplayWindow();
    w.accept(10);
    w.accept(70);
    expect(w.isDuplicate(74)).toBe(false);
    w.accept(74); // slides over slots 71..73 (and clears them)
    expect(w.isDuplicate(10 + 64)).toBe(true);
    expect(w.isDuplicate(10 + 64 + 1)).toBe(false);
  });

  it('matches a reference model over a long random walk', () => {
    const w = new ReplayWindow();
    const seen = new Set<number>();
    let highest = -1;
    let x = 12345;
    let base = 2 ** 48 - 5000;
    for (let i = 0; i < 4000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const seq = Math.min(2 ** 48 - 1, base + (x % 100) - 60);
      if (x % 7 === 0) base += 3;
      const expected = seen.has(seq) || highest - seq >= 64;
      expect(w.isDuplicate(seq)).toBe(expected);
      if (!expected) {
        w.accept(seq);
        seen.add(seq);
        highest = Math.max(highest, seq);
      }
    }
  });

  it('treats anything but a 48-bit integer as a duplicate', () => {
    const w = new ReplayWindow();
    for (const s of [-1, 2 ** 48, 1.5, NaN, Infinity]) expect(w.isDuplicate(s)).toBe(true);
    expect(w.isDuplicate(2 ** 48 - 1)).toBe(false);
  });
});
