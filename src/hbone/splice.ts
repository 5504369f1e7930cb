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
const CORK_MIN_BYTES = 16 * 1024;

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

/**
 * Copies bytes both ways between `downstream` (the side the connection came from) and `upstream` until both
 * directions have ended, then calls `onDone` once, after both sides have closed. A clean end on one side
 * ends the other side's writing half only (half-close); an error or reset on either side resets the other.
 * Sockets are switched to allowHalfOpen so a FIN from one end does not close the other direction.
 */
export function splice(downstream: Duplex, upstream: Duplex, onDone: (result: SpliceResult) => void): Splice {
  let received = 0;
  let sent = 0;
  let error: Error | undefined;
  let open = 2;
  countSplice(1);
  let counted = true;
  const uncount = () => {
    if (counted) countSplice(-1);
    counted = false;
  };

  const fail = (err: Error) => {
    error ??= err;
    resetStream(downstream);
    resetStream(upstream);
  };

  const pump = (src: Duplex, dst: Duplex, count: (n: number) => void) => {
    let corked = false;
    src.on('data', (chunk: Buffer) => {
      count(chunk.length);
      if (dst.destroyed) return;
      // Streams and sockets report "full" at 16 KiB; pausing there makes every 64 KiB read a
      // stop-and-wait round. Let up to SPLICE_BUFFER_BYTES queue instead: still bounded, per direction.
      // Bulk chunks that arrive in one turn go out in one writev instead of a syscall each; a small
      // message (request/response traffic) goes out at once, without waiting a tick.
      if (!corked && chunk.length >= CORK_MIN_BYTES) {
        corked = true;
        dst.cork();
        process.nextTick(() => {
          corked = false;
          dst.uncork();
        });
      }
      dst.write(chunk);
      if (dst.writableLength >= highWater) src.pause();
    });
    dst.on('drain', () => src.resume());
    const endDst = () => {
      if (error === undefined && !dst.destroyed && !dst.writableEnded) dst.end();
    };
    src.on('end', () => {
      // Node emits 'end' on an HTTP/2 stream for a peer's RST_STREAM too, with 'aborted' and the code only
      // right after; wait a turn so a reset is passed on as a reset, not as a clean half-close.
      if (isHttp2Stream(src)) setImmediate(endDst);
      else endDst();
    });
  };

  const watch = (s: Duplex, which: string) => {
    if (s instanceof net.Socket) s.allowHalfOpen = true;
    s.on('error', (err: Error) => fail(err));
    if (isHttp2Stream(s)) s.on('aborted', () => fail(prematureClose(s, which)));
    s.on('close', () => {
      if (!closedCleanly(s)) fail(prematureClose(s, which));
      open -= 1;
      if (open === 0) {
        uncount();
        onDone(error === undefined ? { received, sent } : { received, sent, error });
      }
    });
  };

  watch(downstream, 'downstream');
  watch(upstream, 'upstream');
  pump(downstream, upstream, (n) => {
    received += n;
  });
  pump(upstream, downstream, (n) => {
    sent += n;
  });
  // A side that already finished both ways before we were called will never emit 'close' again.
  for (const [s, which] of [
    [downstream, 'downstream'],
    [upstream, 'upstream'],
  ] as const) {
    if (s.closed) {
      if (!closedCleanly(s)) fail(prematureClose(s, which));
      open -= 1;
    }
  }
  if (open === 0) {
    uncount();
    queueMicrotask(() => onDone({ received, sent, ...(error ? { error } : {}) }));
  }

  return {
    abort: (reason) => fail(reason ?? new Error('the connection was aborted')),
    get received() {
      return received;
    },
    get sent() {
      return sent;
    },
  };
}
