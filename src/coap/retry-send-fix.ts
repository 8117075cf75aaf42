/**
 * node-coap 1.5 sends every reply through a RetrySend object. For a reply it will never
 * retransmit (a piggybacked ACK, a NON), send(…, avoidBackoff = true) still arms a MAX_RTT
 * (202 s) timer that only emits a 'timeout' nobody on the server side listens to, and that timer
 * keeps the RetrySend, its listeners, the response stream and the request alive for 202 s:
 * about 5 KB per request, hundreds of MB under load, walked by every garbage collection.
 * It also parses the reply it just generated, to learn its message ID.
 *
 * For senders whose socket is one of ours (the server side: node-coap's client Agent uses a
 * real socket and keeps the original), a no-retransmit send is one write and nothing armed.
 * CON replies (separate responses, notifications) keep node-coap's retransmission unchanged.
 * (A fix for node-coap upstream; until then it lives here.)
 */
import { createRequire } from 'node:module';

interface RetrySendLike {
  _sock: unknown;
  _port: number;
  _host: string;
  _message: Buffer;
  emit(event: string, ...args: unknown[]): boolean;
  send(message: Buffer, avoidBackoff?: boolean): void;
}

let patched = false;

export function sendRepliesWithoutTimers(isOurSocket: (sock: unknown) => boolean): void {
  if (patched) return;
  let RetrySend: { prototype: RetrySendLike } | undefined;
  try {
    RetrySend = (createRequire(import.meta.url)('coap/dist/lib/retry_send.js') as { default?: { prototype: RetrySendLike } }).default;
  } catch {
    return; // node-coap's layout changed: keep its behaviour
  }
  if (RetrySend === undefined || typeof RetrySend.prototype.send !== 'function') return;
  patched = true;
  const original = RetrySend.prototype.send;
  RetrySend.prototype.send = function (this: RetrySendLike, message: Buffer, avoidBackoff?: boolean): void {
    if (avoidBackoff !== true || !isOurSocket(this._sock)) return original.call(this, message, avoidBackoff);
    this._message = message;
    const sock = this._sock as { send(m: Buffer, o: number, l: number, p: number, h: string, cb: (err: Error | null) => void): void };
    sock.send(message, 0, message.length, this._port, this._host, (err) => {
      if (err != null) this.emit('error', err);
    });
  };
}
