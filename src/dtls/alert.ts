/** Alert protocol messages (RFC 5246 section 7.2). */

import { AlertLevel } from './constants.js';
import { decode, malformed } from './wire.js';

export interface Alert {
  level: number;
  description: number;
}

/**
 * The fragment must be exactly one alert. The level must be warning or fatal; an unknown
 * description is passed through (RFC 5246 leaves its handling to the receiver).
 */
export function parseAlert(fragment: Buffer): Alert | undefined {
  return decode(fragment, (r) => {
    const level = r.u8();
    if (level !== AlertLevel.warning && level !== AlertLevel.fatal) malformed();
    return { level, description: r.u8() };
  });
}

export function encodeAlert(level: number, description: number): Buffer {
  return Buffer.from([level, description]);
}
