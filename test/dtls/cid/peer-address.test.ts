import { describe, expect, it } from 'vitest';
import { PeerAddressTracker } from '../../../src/dtls/peer-address.js';

const HOME = { address: '127.0.0.1', port: 40000 };
const REBOUND = { address: '127.0.0.1', port: 40001 };
const ELSEWHERE = { address: '127.0.0.2', port: 5000 };

function established(): PeerAddressTracker {
  const t = new PeerAddressTracker(HOME);
  expect(t.onAuthenticated(HOME, 1, 0, 60)).toBe('same'); // the client's Finished
  expect(t.onAuthenticated(HOME, 1, 1, 60)).toBe('same');
  return t;
}

describe('PeerAddressTracker (RFC 9146 section 6)', () => {
  it('follows a NAT rebinding: a newer authenticated record from a new port moves the session', () => {
    const t = established();
    expect(t.onAuthenticated(REBOUND, 1, 2, 60)).toBe('moved');
    expect(t.address).toEqual(REBOUND);
    expect(t.validated).toBe(false);
  });

  it('a reordered older record from the old address does not move it back', () => {
    const t = established();
    t.onAuthenticated(REBOUND, 1, 5, 60);
    expect(t.onAuthenticated(HOME, 1, 4, 60)).toBe('kept');
    expect(t.address).toEqual(REBOUND);
  });

  it('an old record replayed from another address changes nothing', () => {
    const t = established();
    expect(t.onAuthenticated(ELSEWHERE, 1, 1, 60)).toBe('kept');
    expect(t.onAuthenticated(ELSEWHERE, 1, 0, 60)).toBe('kept');
    expect(t.address).toEqual(HOME);
    expect(t.validated).toBe(true);
  });

  it('compares epoch before sequence number', () => {
    const t = new PeerAddressTracker(HOME);
    t.onAuthenticated(HOME, 2, 0, 60);
    expect(t.onAuthenticated(REBOUND, 1, 1_000_000, 60)).toBe('kept');
    expect(t.onAuthenticated(REBOUND, 2, 1, 60)).toBe('moved');
  });

  it('sends an unproven address at most three times what came from it', () => {
    const t = established();
    t.onAuthenticated(REBOUND, 1, 2, 100);
    expect(t.maySend(200)).toBe(true);
    expect(t.maySend(101)).toBe(false);
    expect(t.maySend(100)).toBe(true);
    expect(t.maySend(1)).toBe(false);
  });

  it('the new address proves itself with a newer record after we sent it something', () => {
    const t = established();
    t.onAuthenticated(REBOUND, 1, 2, 100);
    expect(t.onAuthenticated(REBOUND, 1, 3, 100)).toBe('same'); // before we sent: more budget only
    expect(t.validated).toBe(false);
    expect(t.maySend(600)).toBe(true);
    expect(t.maySend(1)).toBe(false);
    expect(t.onAuthenticated(REBOUND, 1, 4, 40)).toBe('same');
    expect(t.validated).toBe(true);
    expect(t.maySend(100_000)).toBe(true);
  });

  it('a reply held back as too large counts as an answer: the next newer record proves the address', () => {
    const t = established();
    t.onAuthenticated(REBOUND, 1, 2, 40);
    expect(t.maySend(1100)).toBe(false); // a Block2 response to a 40-byte request
    expect(t.onAuthenticated(REBOUND, 1, 3, 40)).toBe('same'); // the device's retransmission
    expect(t.validated).toBe(true);
    expect(t.maySend(1100)).toBe(true);
  });

  it('a spoofed move is undone by the device’s next record from where it really is', () => {
    const t = established();
    expect(t.onAuthenticated(ELSEWHERE, 1, 2, 60)).toBe('moved'); // a captured fresh record, resent from elsewhere
    expect(t.onAuthenticated(HOME, 1, 3, 60)).toBe('moved');
    expect(t.address).toEqual(HOME);
  });

  it('a validated session sends without limit', () => {
    expect(established().maySend(1_000_000)).toBe(true);
  });
});
