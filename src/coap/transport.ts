/**
 * A `dgram.Socket` look-alike that node-coap can listen on, carrying CoAP over DTLS sessions.
 *
 * Why a subclass and not a plain EventEmitter: node-coap's server only replays its cached reply
 * to a duplicate CON, and only sends its own error replies, when `sock instanceof dgram.Socket`
 * (node_modules/coap/dist/lib/server.js, `_handle` and `_sendError`). Anything else makes it
 * re-run handlers for retransmissions and swallow errors silently.
 *
 * Why never bound: the real UDP socket belongs to the DTLS server. The libuv handle that the
 * `dgram.Socket` constructor creates holds no fd until bind(), and every method that would
 * bind, connect or configure it is overridden here, so no fd is ever opened for this object.
 */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { DataListener, SecureEndpoint } from './types.js';

export interface DtlsCoapSocketOptions {
  /** As for dgram.createSocket; only decides the family address() reports. Default 'udp4'. */
  type?: dgram.SocketType;
  /** What address() reports: the DTLS listener's own address. Default: the wildcard, port 0. */
  localAddress?: AddressInfo;
}

/** Emitted as 'dropped' when a send without a callback could not be delivered. */
export interface DroppedSend {
  address: string | undefined;
  port: number;
  error: Error;
}

type SendData = string | NodeJS.ArrayBufferView | readonly unknown[];
/** As with a real socket: (error, 0) on failure, (null, bytes) on success. */
type SendCallback = (error: Error | null, bytes: number) => void;

interface PendingSend {
  readonly data: Buffer;
  readonly target: string | undefined;
  readonly port: number;
  /** The port argument as given, for the error message when it was not a number. */
  readonly rawPort: unknown;
  readonly cb: SendCallback | undefined;
  /** Sends made after close() fail like a closed socket's, even if flushed later. */
  readonly closedAtCall: boolean;
}

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function toBuffer(msg: unknown): Buffer {
  if (Buffer.isBuffer(msg)) return msg;
  if (typeof msg === 'string') return Buffer.from(msg);
  if (Array.isArray(msg)) return Buffer.concat(msg.map(toBuffer));
  if (ArrayBuffer.isView(msg)) return Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  throw new TypeError('DtlsCoapSocket.send: msg must be a Buffer, TypedArray, DataView or string');
}

export class DtlsCoapSocket extends dgram.Socket {
  readonly endpoint: SecureEndpoint;
  private readonly local: AddressInfo;
  private closed = false;
  private recvBufferSize = 0;
  private sendBufferSize = 0;
  /** The datagram whose 'message' listeners are running right now (see resolveAddress). */
  private dispatching: dgram.RemoteInfo | undefined;
  private readonly onData: DataListener;
  private pending: PendingSend[] = [];

  constructor(
    endpoint: SecureEndpoint,
    typeOrOptions: dgram.SocketType | DtlsCoapSocketOptions = 'udp4',
    messageListener?: (msg: Buffer, rinfo: dgram.RemoteInfo) => void,
  ) {
    const options = typeof typeOrOptions === 'string' ? { type: typeOrOptions } : typeOrOptions;
    const type = options.type ?? 'udp4';
    // Only the type reaches the base class: options such as signal or buffer sizes would make
    // it call methods of this object before its fields exist, or touch the handle.
    // @types/node declares no constructor for dgram.Socket; Node's is (type | options, listener).
    const socketOptions: dgram.SocketOptions = { type };
    super(socketOptions as object);
    if (messageListener !== undefined) this.on('message', messageListener);
    this.endpoint = endpoint;
    this.local = options.localAddress ?? {
      address: type === 'udp6' ? '::' : '0.0.0.0',
      family: type === 'udp6' ? 'IPv6' : 'IPv4',
      port: 0,
    };
    this.onData = (address, port, data) => this.deliver(address, port, data);
    endpoint.on('data', this.onData);
  }

  private deliver(address: string, port: number, data: Buffer): void {
    if (this.closed) return;
    const rinfo: dgram.RemoteInfo = {
      address,
      port,
      // The address is one the DTLS server received from: an IPv6 literal has a ':', IPv4 never.
      family: address.includes(':') ? 'IPv6' : 'IPv4',
      size: data.length,
    };
    const outer = this.dispatching;
    this.dispatching = rinfo;
    try {
      this.emit('message', data, rinfo);
    } catch (err) {
      // A throwing listener must not unwind into the DTLS record layer that called us.
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.dispatching = outer;
    }
  }

  /**
   * node-coap's `_sendError` calls send(buf, 0, len, port) without an address (a real socket
   * would then send to localhost). The only peer it can mean is the one whose datagram is being
   * handled: its error path runs synchronously inside our 'message' emit.
   */
  private resolveAddress(address: string | undefined, port: number): string | undefined {
    if (address != null && address !== '') return address;
    if (this.dispatching !== undefined && this.dispatching.port === port) return this.dispatching.address;
    return undefined;
  }

  /** Same overloads as dgram.Socket#send; the data goes to the DTLS session at address:port. */
  override send(msg: SendData, port?: number, address?: string, callback?: SendCallback): void;
  override send(msg: SendData, port?: number, callback?: SendCallback): void;
  override send(msg: SendData, callback?: SendCallback): void;
  override send(msg: SendData, offset: number, length: number, port?: number, address?: string, callback?: SendCallback): void;
  override send(msg: SendData, offset: number, length: number, port?: number, callback?: SendCallback): void;
  override send(msg: SendData, offset: number, length: number, callback?: SendCallback): void;
  override send(...args: unknown[]): void {
    let [msg, offset, length, port, address, callback] = args;
    let data: Buffer;
    // The same disambiguation as Node's own dgram send().
    if (address || (port && typeof port !== 'function')) {
      const whole = toBuffer(msg);
      const start = typeof offset === 'number' ? offset : 0;
      const end = typeof length === 'number' ? start + length : whole.length;
      data = whole.subarray(start, end);
    } else {
      data = toBuffer(msg);
      callback = port;
      port = offset;
      address = length;
    }
    if (typeof address === 'function') {
      callback = address;
      address = undefined;
    }
    const cb = typeof callback === 'function' ? (callback as SendCallback) : undefined;
    const portNumber = Number(port);
    const target = this.resolveAddress(typeof address === 'string' ? address : undefined, portNumber);
    // Deferred so the DTLS record layer is never re-entered from inside its own 'data' emit,
    // and so callbacks are always asynchronous, as with a real socket. One queue and one tick
    // for all the sends of a turn, not a closure and a tick each; FIFO keeps the order.
    this.pending.push({ data, target, port: portNumber, rawPort: port, cb, closedAtCall: this.closed });
    if (this.pending.length === 1) process.nextTick(this.flush);
  }

  private readonly flush = (): void => {
    const sends = this.pending;
    this.pending = [];
    for (const s of sends) {
      try {
        this.sendNow(s);
      } catch (err) {
        // A throwing send callback is the caller's bug, surfaced as before (uncaught, on its
        // own tick), without losing the sends queued behind it.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  };

  private sendNow({ data, target, port, rawPort, cb, closedAtCall }: PendingSend): void {
    let error: Error | undefined;
    let vanished: Error | undefined;
    if (closedAtCall) {
      error = codedError('Not running', 'ERR_SOCKET_DGRAM_NOT_RUNNING');
    } else if (target === undefined || !Number.isInteger(port)) {
      vanished = codedError(`no DTLS session for port ${String(rawPort)} without an address`, 'ENOTCONN');
    } else {
      try {
        if (!this.endpoint.send(target, port, data)) {
          vanished = codedError(`no DTLS session with ${target}:${port}`, 'ENOTCONN');
        }
      } catch (err) {
        error = err instanceof Error ? err : new Error(String(err));
      }
    }
    // A peer whose session went away is what a host that went away is to a real UDP socket:
    // the send "succeeds" and the datagram is lost. node-coap must not see an error there,
    // because it re-emits it on responses it made itself (2.31 Continue, cached Block2), which
    // have no 'error' listener: that would kill the process. The loss is reported as 'dropped'.
    if (vanished !== undefined) {
      const dropped: DroppedSend = { address: target, port, error: vanished };
      this.emit('dropped', dropped);
    }
    if (cb !== undefined) {
      if (error !== undefined) cb(error, 0);
      else cb(null, vanished ? 0 : data.length);
    } else if (error !== undefined) {
      this.emit('dropped', { address: target, port, error } satisfies DroppedSend);
    }
  }

  /** Never binds: the DTLS server owns the real socket. Emits 'listening' like a real bind. */
  override bind(...args: unknown[]): this {
    const callback = args.find((a) => typeof a === 'function') as (() => void) | undefined;
    if (callback !== undefined) this.once('listening', callback);
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  override close(callback?: () => void): this {
    if (this.closed) {
      if (callback !== undefined) process.nextTick(callback);
      return this;
    }
    this.closed = true;
    this.endpoint.off?.('data', this.onData);
    try {
      // Releases the fd-less libuv handle and emits 'close' on the next tick.
      super.close(callback);
    } catch {
      if (callback !== undefined) this.once('close', callback);
      process.nextTick(() => this.emit('close'));
    }
    return this;
  }

  override async [Symbol.asyncDispose](): Promise<void> {
    await new Promise<void>((resolve) => this.close(resolve));
  }

  override address(): AddressInfo {
    return { ...this.local };
  }

  override remoteAddress(): AddressInfo {
    throw codedError('Not connected', 'ERR_SOCKET_DGRAM_NOT_CONNECTED');
  }

  override connect(): void {
    throw new Error('DtlsCoapSocket cannot connect: it serves every DTLS session at once');
  }

  override disconnect(): void {
    throw codedError('Not connected', 'ERR_SOCKET_DGRAM_NOT_CONNECTED');
  }

  // Socket options have no meaning here: the DTLS server configures its own socket.
  override setBroadcast(_flag: boolean): void {}
  override setTTL(ttl: number): number {
    return ttl;
  }
  override setMulticastTTL(ttl: number): number {
    return ttl;
  }
  override setMulticastLoopback(flag: boolean): boolean {
    return flag;
  }
  override setMulticastInterface(_multicastInterface: string): void {}
  override addMembership(_multicastAddress: string, _multicastInterface?: string): void {}
  override dropMembership(_multicastAddress: string, _multicastInterface?: string): void {}
  override addSourceSpecificMembership(_source: string, _group: string, _multicastInterface?: string): void {}
  override dropSourceSpecificMembership(_source: string, _group: string, _multicastInterface?: string): void {}
  override setRecvBufferSize(size: number): void {
    this.recvBufferSize = size;
  }
  override setSendBufferSize(size: number): void {
    this.sendBufferSize = size;
  }
  override getRecvBufferSize(): number {
    return this.recvBufferSize;
  }
  override getSendBufferSize(): number {
    return this.sendBufferSize;
  }
  override getSendQueueSize(): number {
    return 0;
  }
  override getSendQueueCount(): number {
    return 0;
  }
  override ref(): this {
    return this;
  }
  override unref(): this {
    return this;
  }
}
