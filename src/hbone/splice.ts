// Bidirectional byte copy between two duplex streams (TCP sockets, HTTP/2 CONNECT streams): backpressure
// each way, half-close carried across, a reset on one side turned into a reset on the other, byte counts.

import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { HBONE_ERRORS } from './errors.ts';

/** How much may wait, per direction, for the slower side before the faster one is paused. */
export const SPLICE_BUFFER_BYTES = 512 * 1024;
/**
 * What all splices of the process may hold together, both directions: with more than 32 open, each
 * direction's share shrinks (powers of two, never below 16 KiB, a stream's own high-water mark), so a
 * thousand stalled upstreams cost the share, not 512 KiB each.
 */
export const SPLICE_PROCESS_BUFFER_BYTES = 32 * 1024 * 1024;
const SPLICE_MIN_BUFFER_BYTES = 16 * 1024;
/**
 * A chunk this big starts a cork: a socket's 64 KiB reads, and an HTTP/2 stream's bulk, which it hands over
 * as it cuts through TLS records (16 KiB of plaintext holding the tail of one 16 KiB DATA frame and the
 * head of the next: chunks of 16,375 B and 9 B). Request/response messages, smaller, go out at once: a cork
 * costs them a turn's wait and an immediate each (8 KiB messages took more CPU corked).
 */
const CORK_MIN_BYTES = 12 * 1024;

let openSplices = 0;
/** The per-direction pause threshold now; read per chunk, recomputed only as splices open and close. */
let highWater = SPLICE_BUFFER_BYTES;

function countSplice(delta: 1 | -1): void {
  openSplices += delta;
  const share = SPLICE_PROCESS_BUFFER_BYTES / (2 * Math.max(1, openSplices));
  highWater = Math.min(
    SPLICE_BUFFER_BYTES,
    Math.max(SPLICE_MIN_BUFFER_BYTES, 2 ** Math.floor(Math.log2(share))),
  );
}

/** Open splices and the per-direction threshold each gets (for the admin endpoint and tests). */
export function spliceStats(): { open: number; highWaterBytes: number } {
  return { open: openSplices, highWaterBytes: highWater };
}

export interface SpliceResult {
  /** Bytes read from the downstream side (the connection's initiator) and written upstream: the request direction. */
  received: number;
  /** Bytes read from the upstream side and written downstream: the response direction. */
  sent: number;
  /** Why the splice ended abnormally (a reset, an error, an abort); absent after a clean close both ways. */
  error?: Error;
}

export interface Splice {
  /** Reset both sides now (e.g. policy changed and now denies this connection). */
  abort(reason?: Error): void;
  /** Bytes copied so far, each way. */
  readonly received: number;
  readonly sent: number;
}

type Http2StreamLike = Duplex & { rstCode?: number; close(code?: number): void; session: unknown };

function isHttp2Stream(s: Duplex): s is Http2StreamLike {
  return 'rstCode' in s && 'session' in s && typeof (s as Http2StreamLike).close === 'function';
}

/**
 * Ends `s` abruptly so its peer sees a reset, not a clean end: TCP RST for a socket, RST_STREAM with
 * CONNECT_ERROR for an HTTP/2 CONNECT stream (RFC 9113 §8.5 maps the two onto each other).
 */
export function resetStream(s: Duplex): void {
  if (s.destroyed) return;
  if (isHttp2Stream(s)) {
    s.close(http2.constants.NGHTTP2_CONNECT_ERROR);
    return;
  }
  // libuv refuses to RST a socket whose write side was already shut down (uv_tcp_close_reset returns EINVAL
  // and Node then never closes the handle, which hangs the process at exit); such a socket gets a plain
  // destroy, as does a TLS socket, whose handle is not TCP (resetAndDestroy throws for it).
  if (s instanceof net.Socket && !s.writableEnded && !(s instanceof TLSSocket)) {
    s.resetAndDestroy();
    return;
  }
  s.destroy();
}

/**
 * True when `s` closed after a clean end both ways. An HTTP/2 stream can emit 'close' before its own
 * 'finish', so for it "our END_STREAM was sent and no RST_STREAM with an error code" is the test.
 */
function closedCleanly(s: Duplex): boolean {
  if (isHttp2Stream(s)) {
    return s.readableEnded && s.writableEnded && (s.rstCode ?? 0) === http2.constants.NGHTTP2_NO_ERROR;
  }
  return s.readableEnded && s.writableFinished;
}

function prematureClose(s: Duplex, which: string): Error {
  const rst = isHttp2Stream(s) && s.rstCode !== undefined ? ` (RST_STREAM code ${s.rstCode})` : '';
  return Object.assign(new Error(`the ${which} side closed before ending cleanly${rst}`), {
    code: HBONE_ERRORS.RESET,
  });
}

/** Where a spliced stream finds its splice: one property, read by the listeners every splice shares. */
const SPLICE = Symbol('ambit.splice');
type Spliced = Duplex & { [SPLICE]?: SpliceRecord };

/**
 * One splice's state, the only thing allocated per proxied connection here: the listeners on both sides
 * are module functions shared by every splice (each finds its record through the emitter), so a splice
 * costs this record and no closures, whatever it carries.
 */
class SpliceRecord implements Splice {
  readonly downstream: Duplex;
  readonly upstream: Duplex;
  readonly downH2: boolean;
  readonly upH2: boolean;
  readonly onDone: (result: SpliceResult) => void;
  received = 0;
  sent = 0;
  error: Error | undefined;
  open = 2;
  counted = true;
  /** A write toward downstream / upstream is corked until this loop turn's I/O is done (one writev). */
  corkedDown = false;
  corkedUp = false;

  constructor(downstream: Duplex, upstream: Duplex, onDone: (result: SpliceResult) => void) {
    this.downstream = downstream;
    this.upstream = upstream;
    this.downH2 = isHttp2Stream(downstream);
    this.upH2 = isHttp2Stream(upstream);
    this.onDone = onDone;
  }

  abort(reason?: Error): void {
    this.fail(reason ?? new Error('the connection was aborted'));
  }

  fail(err: Error): void {
    this.error ??= err;
    resetStream(this.downstream);
    resetStream(this.upstream);
  }

  uncount(): void {
    if (this.counted) countSplice(-1);
    this.counted = false;
  }

  result(): SpliceResult {
    return this.error === undefined
      ? { received: this.received, sent: this.sent }
      : { received: this.received, sent: this.sent, error: this.error };
  }

  /** The side `s` copies to, and what it is called. */
  other(s: Duplex): Duplex {
    return s === this.downstream ? this.upstream : this.downstream;
  }

  which(s: Duplex): 'downstream' | 'upstream' {
    return s === this.downstream ? 'downstream' : 'upstream';
  }

  isH2(s: Duplex): boolean {
    return s === this.downstream ? this.downH2 : this.upH2;
  }
}

function recordOf(s: Duplex): SpliceRecord {
  return (s as Spliced)[SPLICE]!;
}

function onData(this: Duplex, chunk: Buffer): void {
  const sp = recordOf(this);
  const fromDownstream = this === sp.downstream;
  if (fromDownstream) sp.received += chunk.length;
  else sp.sent += chunk.length;
  const dst = sp.other(this);
  if (dst.destroyed) return;
  // Streams and sockets report "full" at 16 KiB; pausing there makes every 64 KiB read a stop-and-wait
  // round. Let up to the splice's high-water mark queue instead: still bounded, per direction. Bulk chunks
  // that arrive in one turn of the event loop go out in one writev (setImmediate: after every read of this
  // turn's poll; an HTTP/2 stream's chunks each run their own tick, so nextTick would flush each alone)
  // instead of a syscall each; a small message (request/response traffic) goes out at once.
  if (chunk.length >= CORK_MIN_BYTES && !(fromDownstream ? sp.corkedUp : sp.corkedDown)) {
    if (fromDownstream) sp.corkedUp = true;
    else sp.corkedDown = true;
    dst.cork();
    setImmediate(uncorkTick, sp, dst);
  }
  dst.write(chunk);
  if (dst.writableLength >= highWater) this.pause();
}

function uncorkTick(sp: SpliceRecord, dst: Duplex): void {
  if (dst === sp.upstream) sp.corkedUp = false;
  else sp.corkedDown = false;
  dst.uncork();
}

/** `this` (a destination) drained: its source may read again. */
function onDrain(this: Duplex): void {
  const sp = recordOf(this);
  sp.other(this).resume();
}

function onEnd(this: Duplex): void {
  const sp = recordOf(this);
  // Node emits 'end' on an HTTP/2 stream for a peer's RST_STREAM too, with 'aborted' and the code only
  // right after; wait a turn so a reset is passed on as a reset, not as a clean half-close.
  if (sp.isH2(this)) setImmediate(endOther, sp, this);
  else endOther(sp, this);
}

function endOther(sp: SpliceRecord, src: Duplex): void {
  const dst = sp.other(src);
  if (sp.error === undefined && !dst.destroyed && !dst.writableEnded) dst.end();
}

function onError(this: Duplex, err: Error): void {
  recordOf(this).fail(err);
}

function onAborted(this: Duplex): void {
  const sp = recordOf(this);
  sp.fail(prematureClose(this, sp.which(this)));
}

function onClose(this: Duplex): void {
  const sp = recordOf(this);
  if (!closedCleanly(this)) sp.fail(prematureClose(this, sp.which(this)));
  sp.open -= 1;
  if (sp.open === 0) {
    sp.uncount();
    sp.onDone(sp.result());
  }
}

/**
 * Copies bytes both ways between `downstream` (the side the connection came from) and `upstream` until both
 * directions have ended, then calls `onDone` once, after both sides have closed. A clean end on one side
 * ends the other side's writing half only (half-close); an error or reset on either side resets the other.
 * Sockets are switched to allowHalfOpen so a FIN from one end does not close the other direction.
 */
export function splice(downstream: Duplex, upstream: Duplex, onDone: (result: SpliceResult) => void): Splice {
  const sp = new SpliceRecord(downstream, upstream, onDone);
  countSplice(1);
  for (const s of [downstream, upstream]) {
    (s as Spliced)[SPLICE] = sp;
    if (s instanceof net.Socket) s.allowHalfOpen = true;
    s.on('error', onError);
    if (sp.isH2(s)) s.on('aborted', onAborted);
    s.on('close', onClose);
    s.on('data', onData);
    s.on('drain', onDrain); // this side drained: the other side may read again
    s.on('end', onEnd);
  }
  // A side that already finished both ways before we were called will never emit 'close' again.
  for (const s of [downstream, upstream]) {
    if (s.closed) {
      if (!closedCleanly(s)) sp.fail(prematureClose(s, sp.which(s)));
      sp.open -= 1;
    }
  }
  if (sp.open === 0) {
    sp.uncount();
    queueMicrotask(() => onDone(sp.result()));
  }
  return sp;
}
