// The request body on its way to the backend: streamed to the current attempt with backpressure, kept
// (up to a limit) so a retry can send it again, and copied to mirrors without ever waiting for them.

import type { Readable, Writable } from 'node:stream';

/** Bodies up to this size are kept for a retry; a larger body makes the request not retriable. */
export const RETRY_BUFFER_BYTES = 64 * 1024;
/** A mirror that falls this far behind is dropped rather than slowing the client or costing memory. */
export const MIRROR_BUFFER_BYTES = 1024 * 1024;

export class BodyFeed {
  private readonly source: Readable;
  private readonly limit: number;
  private kept: Buffer[] = [];
  private keptBytes = 0;
  private sink: Writable | undefined;
  private readonly taps = new Set<Writable>();
  private ended = false;
  private discarding = false;
  /** Body bytes received from the client so far. */
  bytes = 0;
  /** False once the body outgrew `limit`: what was sent cannot be sent again. */
  replayable: boolean;

  /** `keep`: bytes kept for a replay (0: none, the body is not retried). */
  constructor(source: Readable, keep: number) {
    this.source = source;
    this.limit = keep;
    this.replayable = keep > 0;
    source.pause();
    source.on('error', () => {}); // a client that leaves is seen by the exchange (onAbort), not here
    source.on('data', (chunk: Buffer) => this.onData(chunk));
    source.once('end', () => {
      this.ended = true;
      this.sink?.end();
      for (const t of this.taps) t.end();
    });
  }

  /** Sends the body to `sink`: what was kept first, then the rest as it arrives. */
  attach(sink: Writable): void {
    this.sink = sink;
    for (const chunk of this.kept) sink.write(chunk);
    if (this.ended) {
      sink.end();
      return;
    }
    sink.on('drain', () => {
      if (this.sink === sink) this.source.resume();
    });
    this.source.resume();
  }

  /** The current attempt failed: stop sending to it (the client waits, paused, for the next one). */
  detach(): void {
    this.sink = undefined;
    if (!this.ended) this.source.pause();
  }

  /** The response is complete while the client still sends: read the rest and drop it. */
  discard(): void {
    this.sink = undefined;
    this.discarding = true;
    this.source.resume();
  }

  /** Copies the body, from its start, to `tap` (a mirror) without backpressure. */
  tap(tap: Writable): void {
    for (const chunk of this.kept) tap.write(chunk);
    if (this.ended) tap.end();
    else this.taps.add(tap);
    tap.once('close', () => this.taps.delete(tap));
  }

  /** True when the whole body has been received from the client. */
  get complete(): boolean {
    return this.ended;
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.replayable) {
      if (this.keptBytes + chunk.length <= this.limit) {
        this.kept.push(chunk);
        this.keptBytes += chunk.length;
      } else {
        this.replayable = false;
        this.kept = [];
        this.keptBytes = 0;
      }
    }
    for (const t of this.taps) {
      if (t.writableLength > MIRROR_BUFFER_BYTES) t.destroy();
      else t.write(chunk);
    }
    if (this.discarding) return;
    const sink = this.sink;
    if (sink === undefined || sink.destroyed) {
      this.source.pause();
      return;
    }
    if (!sink.write(chunk)) this.source.pause();
  }
}
