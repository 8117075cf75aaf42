/**
 * The serve command's logger: pino JSON on stderr (src/log.ts), or the same records made
 * readable by pino-pretty. Without a setting, a terminal gets the readable form and anything
 * else (a pipe, a journal, a log shipper) gets JSON lines.
 */
import { pino, transport } from 'pino';
import { createLogger, loggerOptions, type Logger } from '../log.js';

export function createServeLogger(level: string, format?: 'json' | 'pretty'): Logger {
  const chosen = format ?? (process.stderr.isTTY === true ? 'pretty' : 'json');
  if (chosen === 'json') return createLogger(level);
  return pino(loggerOptions(level), transport({ target: 'pino-pretty', options: { destination: 2, colorize: process.stderr.isTTY === true } }));
}
