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

/** Bytes of log lines gathered per write(2); a line waits at most FLUSH_MS for the rest. */
const MIN_WRITE = 4096;
const FLUSH_MS = 200;

/**
 * pino's own destination, asynchronous and buffered: with minLength 0 every line is one
 * write(2) through libuv's thread pool (a line per handshake at info), gathered here into
 * writes of MIN_WRITE bytes. pino flushes what is left when the process exits.
 */
export function createLogger(level: string = process.env.COAP_PSK_LOG_LEVEL ?? 'info'): Logger {
  const dest = destination({ fd: 2, sync: false, minLength: MIN_WRITE });
  let unflushed = false;
  const timer = setInterval(() => {
    if (unflushed) {
      unflushed = false;
      dest.flush();
    }
  }, FLUSH_MS);
  timer.unref();
  dest.once('close', () => clearInterval(timer));
  const stream = {
    write(line: string): boolean {
      unflushed = true;
      return dest.write(line);
    },
    flush: (cb?: (err?: Error) => void) => dest.flush(cb),
  };
  return pino(loggerOptions(level), stream);
}

/** For library users and tests that want silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
