import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { childLogger, loggerOptions } from '../src/log.js';

/** A logger writing its lines into `lines`, with a fixed time so that two loggers' lines compare. */
function capture(make: (stream: Writable) => Logger): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
  return { log: make(stream), lines };
}

const opts = { timestamp: () => ',"time":1', base: { pid: 1, hostname: 'h' } };
// The redaction this project configured in pino until it was made a formatter (src/log.ts).
const pinoRedaction = { paths: ['pin', 'psk', 'key', 'masterSecret', '*.pin', '*.psk', '*.key'], censor: '[redacted]' };

const records: Array<Record<string, unknown>> = [
  { address: '127.0.0.1', port: 5684, identity: 'SN-1', pskTag: 'k1', suite: 'TLS_PSK_WITH_AES_128_CCM_8', ms: 3, kind: 'full' },
  { pin: '1234', psk: Buffer.from('secret'), key: 'k', masterSecret: Buffer.alloc(48, 1), other: 1 },
  { nested: { pin: '1234', psk: 'p', key: 'k', masterSecret: 'm', kept: true }, list: [{ pin: 'x' }] },
  { deeper: { a: { pin: 'not one level down' } }, undefinedKey: undefined, key: undefined },
  { err: Object.assign(new Error('boom'), { key: 'inside an error' }) },
];

describe('log redaction', () => {
  it('writes the same lines as pino\'s redact option did, secrets censored one level deep', () => {
    const ours = capture((s) => pino({ ...loggerOptions('info'), ...opts }, s));
    const theirs = capture((s) => pino({ name: 'coap-psk', level: 'info', redact: pinoRedaction, ...opts }, s));
    for (const r of records) {
      ours.log.info(r, 'line');
      theirs.log.info(r, 'line');
    }
    childLogger(ours.log, { psk: 'bound', worker: 2 }).info({ pin: '0' }, 'child');
    theirs.log.child({ psk: 'bound', worker: 2 }).info({ pin: '0' }, 'child');
    expect(ours.lines).toEqual(theirs.lines);
    const joined = ours.lines.join('');
    for (const secret of ['1234', 'secret', '"k"', 'bound', 'inside an error']) expect(joined).not.toContain(secret);
    expect(joined).toContain('not one level down');
  });

  it('leaves the caller\'s record as it was', () => {
    const record = { pin: '1234', nested: { psk: 'p' } };
    capture((s) => pino({ ...loggerOptions('info'), ...opts }, s)).log.info(record, 'line');
    expect(record).toEqual({ pin: '1234', nested: { psk: 'p' } });
  });
});
