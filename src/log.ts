/**
 * Logging: structured JSON lines through pino, on stderr so stdout stays for command output
 * (derive writes keys there). Log records carry identities, suites and reasons — never a key,
 * PIN or master secret; the redaction list is a second line of defence, not the first.
 */
import { pino, destination, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** The options every logger of the project shares: its name and the redaction list. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    name: 'coap-psk',
    level,
    redact: { paths: ['pin', 'psk', 'key', 'masterSecret', '*.pin', '*.psk', '*.key'], censor: '[redacted]' },
  };
}

export function createLogger(level: string = process.env.COAP_PSK_LOG_LEVEL ?? 'info'): Logger {
  return pino(loggerOptions(level), destination({ fd: 2, sync: false }));
}

/** For library users and tests that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
