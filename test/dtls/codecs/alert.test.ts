import { describe, expect, it } from 'vitest';
import { encodeAlert, parseAlert } from '../../../src/dtls/alert.js';
import { AlertDescription, AlertLevel } from '../../../src/dtls/constants.js';
import { expectRejectsTruncationAndTrailing, hex } from './flights.js';

describe('Alert (RFC 5246 7.2)', () => {
  // Alerts after the handshake are encrypted; these are the plaintext bytes of RFC 5246 7.2.
  it('round-trips known bytes', () => {
    expect(encodeAlert(AlertLevel.fatal, AlertDescription.unknown_psk_identity)).toEqual(hex('0273'));
    expect(parseAlert(hex('0100'))).toEqual({ level: AlertLevel.warning, description: AlertDescription.close_notify });
    expect(parseAlert(hex('0228'))).toEqual({ level: 2, description: 40 });
  });

  it('passes unknown descriptions through but rejects unknown levels', () => {
    expect(parseAlert(hex('02fe'))).toEqual({ level: 2, description: 0xfe });
    expect(parseAlert(hex('0000'))).toBeUndefined();
    expect(parseAlert(hex('0300'))).toBeUndefined();
  });

  it('rejects truncation and trailing bytes', () => {
    expectRejectsTruncationAndTrailing(parseAlert, hex('0228'));
  });
});
