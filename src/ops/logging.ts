/**
 * The serve command's logger: pino JSON on stderr (src/log.ts), or, with `log.format: pretty`,
 * the same records through pino-pretty when that package is installed. There is no hand-written
 * pretty printer here on purpose: without pino-pretty the start fails with one line saying so.
 */
import { createRequire } from 'node:module';
import { pino, transport } from 'pino';
import { UserError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';

export function createServeLogger(level: string, format: 'json' | 'pretty' = 'json'): Logger {
  if (format === 'json') return createLogger(level);
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
  } catch {
    throw new UserError('config log.format: pretty needs the pino-pretty package (npm install pino-pretty); use json, or pipe the JSON through `npx pino-pretty`');
  }
  return pino(
    {
      name: 'coap-psk',
      level,
      // Same second line of defence as src/log.ts.
      redact: { paths: ['pin', 'psk', 'key', 'masterSecret', '*.pin', '*.psk', '*.key'], censor: '[redacted]' },
    },
    transport({ target: 'pino-pretty', options: { destination: 2, colorize: process.stderr.isTTY === true } }),
  );
}
