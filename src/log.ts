/**
 * Logging: structured JSON lines through pino, on stderr so stdout stays for command output
 * (derive writes keys there). Log records carry identities, suites and reasons — never a key,
 * PIN or master secret; the redaction list is a second line of defence, not the first.
 */
import { pino, destination, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** The options every logger of the project shares: its name and the redaction of secrets' keys. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    name: 'coap-psk',
    level,
    formatters: { log: redactSecrets, bindings: redactSecrets },
  };
}

/**
 * A child logger with `bindings`, redacted as records are: pino gives a child's bindings no
 * formatter unless the child is made with one.
 */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return logger.child(bindings, { formatters: { bindings: redactSecrets } });
}

/** Keys whose values never reach a log line, at the top of a record; the second list one level down. */
const SECRET_KEYS = ['pin', 'psk', 'key', 'masterSecret'];
const NESTED_SECRET_KEYS = ['pin', 'psk', 'key'];
const CENSOR = '[redacted]';

/**
 * What pino's `redact: ['pin', 'psk', 'key', 'masterSecret', '*.pin', '*.psk', '*.key']` did, as
 * a formatter: the record is copied only when it holds one of those keys. pino's own redaction,
 * with wildcard paths, ran a redactor over every field of every line (it parsed the paths each
 * time): ~6 KB of garbage and a few µs per handshake's log line.
 */
export function redactSecrets(record: Record<string, unknown>): Record<string, unknown> {
  let out = record;
  for (const k in record) {
    const value = record[k];
    if (value === undefined || !Object.prototype.hasOwnProperty.call(record, k)) continue;
    const censored = SECRET_KEYS.includes(k) ? CENSOR : redactNested(value);
    if (censored === value) continue;
    if (out === record) out = { ...record };
    out[k] = censored;
  }
  return out;
}

/** An object value with a secret key one level down, as a copy with it censored; anything else as it is. */
function redactNested(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const v = value as Record<string, unknown>;
  const found = NESTED_SECRET_KEYS.filter((k) => Object.prototype.hasOwnProperty.call(v, k) && v[k] !== undefined);
  if (found.length === 0) return value;
  // Every own property kept, non-enumerable ones too (an Error's message and stack for its
  // serializer). An accessor is copied as its value: on Node 24 an Error's `stack` is an own
  // accessor that reads the original's internal slot and gives '' on any other object.
  const descriptors = Object.getOwnPropertyDescriptors(v);
  for (const [k, d] of Object.entries(descriptors)) {
    if (d.get !== undefined || d.set !== undefined) descriptors[k] = { value: v[k], enumerable: d.enumerable, writable: true, configurable: true };
  }
  const copy = Object.defineProperties(Object.create(Object.getPrototypeOf(v) as object | null) as Record<string, unknown>, descriptors);
  for (const k of found) Object.defineProperty(copy, k, { value: CENSOR, enumerable: true, writable: true, configurable: true });
  return copy;
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
