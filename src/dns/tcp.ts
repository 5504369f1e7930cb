// One DNS client's TCP connection (RFC 7766): two-byte length-prefixed messages, several per
// connection, pipelined; answers go out as they are ready, so a forwarded query does not hold up a
// table answer behind it. Reading pauses while the client does not read its answers, which keeps
// what one connection buffers bounded.

import type { Socket } from 'node:net';
import type { Forwarding } from './forward.ts';
import { headerOnly, MAX_QUERY_BYTES, readHeader } from './message.ts';
import type { DnsMetrics } from './metrics.ts';

/** Answers written but not yet taken by the client, past which the connection stops reading. */
const WRITE_HIGH_WATER = 64 * 1024;
const LENGTH_BYTES = 2;
const HEADER_BYTES = 12;

/** One message from the client; `send` writes one answer, framed. */
export type TcpHandler = (
  message: Buffer,
  send: (answer: Buffer) => void,
  connection: DnsTcpConnection,
) => void;

export class DnsTcpConnection {
  /** Queries of this connection being forwarded: cancelled when it closes. */
  readonly forwards = new Set<Forwarding>();
  private readonly socket: Socket;
  private readonly handler: TcpHandler;
  private readonly metrics: DnsMetrics | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private clientEnded = false;
  private readonly idleMs: number;
  private endTimer: NodeJS.Timeout | undefined;
  private readonly send = (answer: Buffer): void => this.write(answer);

  constructor(socket: Socket, handler: TcpHandler, idleMs: number, metrics: DnsMetrics | undefined) {
    this.socket = socket;
    this.handler = handler;
    this.metrics = metrics;
    this.idleMs = idleMs;
    socket.setNoDelay(true);
    socket.setTimeout(idleMs);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('timeout', () => this.idle());
    socket.on('end', () => {
      this.clientEnded = true;
      this.settled();
    });
    // An error is followed by 'close', where everything is released; nothing to add here.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(this.endTimer);
      for (const f of this.forwards) f.cancel();
      this.forwards.clear();
    });
  }

  /** Called when a forwarded query of this connection is done: a half-closed client is ended once nothing is pending. */
  settled(): void {
    if (this.clientEnded && this.forwards.size === 0 && !this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    if (chunk.length > 0)
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    // Paused: a client that does not read its answers gets no more until they drain (bounded memory).
    while (this.buffered.length >= LENGTH_BYTES && !this.socket.destroyed && !this.socket.isPaused()) {
      const length = this.buffered.readUInt16BE(0);
      if (length > MAX_QUERY_BYTES) {
        this.oversize();
        return;
      }
      const end = LENGTH_BYTES + length;
      if (this.buffered.length < end) return;
      const message = this.buffered.subarray(LENGTH_BYTES, end);
      this.buffered = this.buffered.subarray(end);
      this.handler(message, this.send, this);
    }
  }

  /** A length past any query: FORMERR once the header is in (id echoed), then the framing is lost, so close. */
  private oversize(): void {
    if (this.buffered.length < LENGTH_BYTES + HEADER_BYTES) return;
    const header = readHeader(this.buffered.subarray(LENGTH_BYTES, LENGTH_BYTES + HEADER_BYTES));
    if (header && !header.qr) {
      this.write(headerOnly(header, 'FORMERR'));
      this.metrics?.answer('server', 'FORMERR');
    }
    this.metrics?.dropped('tcp_length');
    this.buffered = Buffer.alloc(0);
    this.socket.end();
  }

  private write(answer: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) {
      this.metrics?.dropped('send');
      return;
    }
    const prefix = Buffer.alloc(LENGTH_BYTES);
    prefix.writeUInt16BE(answer.length);
    this.socket.write(Buffer.concat([prefix, answer]));
    if (this.socket.writableLength > WRITE_HIGH_WATER && !this.socket.isPaused()) {
      this.socket.pause();
      this.socket.once('drain', () => {
        this.socket.resume();
        this.read(Buffer.alloc(0)); // the queries already read but not yet answered
      });
    }
  }

  /**
   * Idle: nothing read for the idle time and nothing being forwarded. End first; a client that never
   * closes its side (a half-open connection sends nothing more, so no second timeout would come) is
   * destroyed one idle time later.
   */
  private idle(): void {
    if (this.forwards.size > 0 || this.endTimer) return;
    this.socket.end();
    this.endTimer = setTimeout(() => this.socket.destroy(), this.idleMs);
    this.endTimer.unref();
  }
}
