// HBONE's numbers, as Istio ambient's: the port, stream limits, timeouts, and the
// HTTP/2 flow-control windows large enough that one stream can fill the pipe.

import type { Settings } from 'node:http2';
import { PORTS } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { HBONE_ERRORS } from './errors.ts';

export const HBONE_PORT = PORTS.hbone;
const MiB = 1024 * 1024;

export interface FlowControl {
  /** Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindowBytes: number;
  /** Per-connection receive window (grown with WINDOW_UPDATE on stream 0 once the session is up). */
  connectionWindowBytes: number;
  /** Largest DATA frame we accept (SETTINGS_MAX_FRAME_SIZE). */
  maxFrameBytes: number;
}

export const DEFAULT_FLOW_CONTROL: FlowControl = {
  streamWindowBytes: 4 * MiB,
  connectionWindowBytes: 16 * MiB,
  maxFrameBytes: 1 * MiB,
};

export const DEFAULT_MAX_STREAMS = 100;

/**
 * An idle pooled connection that is not the last to its peer closes after this: one stays warm for the
 * whole idle timeout (5 min, Istio's POOL_UNUSED_RELEASE_TIMEOUT), the rest of what a burst opened goes.
 */
export const DEFAULT_SPARE_IDLE_MS = 15_000;

/** TCP keepalive idle time on HBONE, captured and upstream sockets: Istio's ztunnel uses 180 s. */
export const TCP_KEEPALIVE_MS = 180_000;

/** The SETTINGS both ends send. No server push; HBONE never uses it. */
export function h2Settings(flow: FlowControl, maxConcurrentStreams?: number): Settings {
  return {
    enablePush: false,
    initialWindowSize: flow.streamWindowBytes,
    maxFrameSize: flow.maxFrameBytes,
    ...(maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams }),
  };
}

/**
 * nghttp2 counts buffered frames against maxSessionMemory (MB, default 10) and answers ENHANCE_YOUR_CALM
 * beyond it; a full 16 MiB connection window must fit, with room for headers and queued writes.
 */
export function sessionMemoryMb(flow: FlowControl): number {
  return Math.ceil((flow.connectionWindowBytes * 2) / MiB) + 16;
}

/** Checks that option `name` is an integer within [min, max]; throws AMBIT_ERR_HBONE_BAD_OPTIONS. */
export function intOption(where: string, name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new AmbitError(
      HBONE_ERRORS.BAD_OPTIONS,
      `${where}: option "${name}" must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
      { detail: { option: name, value } },
    );
  }
  return value;
}

export function flowControlOptions(where: string, input: Partial<FlowControl> | undefined): FlowControl {
  const f = { ...DEFAULT_FLOW_CONTROL, ...input };
  return {
    // HTTP/2 limits: windows up to 2^31-1, frames 16 KiB..16 MiB-1 (RFC 9113 §6.5.2).
    streamWindowBytes: intOption(where, 'streamWindowBytes', f.streamWindowBytes, 65535, 2 ** 31 - 1),
    connectionWindowBytes: intOption(
      where,
      'connectionWindowBytes',
      f.connectionWindowBytes,
      65535,
      2 ** 31 - 1,
    ),
    maxFrameBytes: intOption(where, 'maxFrameBytes', f.maxFrameBytes, 16384, 2 ** 24 - 1),
  };
}

/** The smallest per-stream window the budget hands out (HTTP/2's default is 64 KiB − 1). */
const MIN_STREAM_WINDOW = 64 * 1024;

export interface WindowBudgetOptions {
  /** What one session's streams may hold unread, together (default: the connection window, 16 MiB). */
  sessionBytes?: number;
  /** What every tracked session's streams may hold unread, together (default 128 MiB). */
  processBytes?: number;
  /** The window a stream gets while there is room (default: the stream window, 4 MiB). */
  maxStreamWindowBytes?: number;
}

interface Tracked {
  streams: number;
  /** The SETTINGS_INITIAL_WINDOW_SIZE announced (or on its way). */
  window: number;
  /** A change waits for the ACK of the SETTINGS in flight. */
  waiting: boolean;
  /** The most this session may announce: the window it was set up with. */
  max: number;
}

type SettingsSession = {
  destroyed: boolean;
  pendingSettingsAck: boolean;
  settings(s: Settings): void;
  once(event: 'localSettings' | 'close', listener: () => void): unknown;
};

/**
 * Bounds what HTTP/2 peers may send us before we read it. Node credits a stream's window only as the
 * stream is read (splice pauses a stream whose destination is full, and its window then stays closed), but
 * credits the connection window as soon as data arrives, so the connection window bounds nothing: what a
 * session may hold unread is (its streams × the stream window). The budget lowers the stream window it
 * announces (SETTINGS_INITIAL_WINDOW_SIZE, which moves every open stream's window by the difference) as
 * streams open, so that a session's streams share `sessionBytes` and all sessions' share `processBytes`, in
 * power-of-two steps between 64 KiB and the full window; it raises it again as they close. A stream alone
 * keeps the full window (single-stream throughput is unchanged); data already received under a larger
 * window stays until read, so a burst of new streams can briefly hold more than the share.
 */
export class WindowBudget {
  private readonly sessionBytes: number;
  private readonly processBytes: number;
  private readonly maxWindow: number;
  private readonly sessions = new Map<SettingsSession, Tracked>();
  private total = 0;
  /** The process-wide share at the last count, to re-announce only when it moves a step. */
  private processShare: number;

  constructor(options: WindowBudgetOptions = {}) {
    this.maxWindow = intOption(
      'WindowBudget',
      'maxStreamWindowBytes',
      options.maxStreamWindowBytes ?? DEFAULT_FLOW_CONTROL.streamWindowBytes,
      MIN_STREAM_WINDOW,
      2 ** 31 - 1,
    );
    this.sessionBytes = intOption(
      'WindowBudget',
      'sessionBytes',
      options.sessionBytes ?? DEFAULT_FLOW_CONTROL.connectionWindowBytes,
      MIN_STREAM_WINDOW,
      2 ** 40,
    );
    this.processBytes = intOption(
      'WindowBudget',
      'processBytes',
      options.processBytes ?? 128 * MiB,
      MIN_STREAM_WINDOW,
      2 ** 40,
    );
    this.processShare = this.maxWindow;
  }

  /** Starts counting `session`'s streams; it announced `window` in its first SETTINGS. */
  track(session: SettingsSession, window = this.maxWindow): void {
    this.sessions.set(session, { streams: 0, window, waiting: false, max: window });
    session.once('close', () => {
      const t = this.sessions.get(session);
      this.sessions.delete(session);
      if (t) this.total -= t.streams;
    });
  }

  /** A stream opened on `session` (O(1) unless the process-wide share moves a step). */
  opened(session: SettingsSession): void {
    const t = this.sessions.get(session);
    if (!t) return;
    t.streams += 1;
    this.total += 1;
    this.rebalance(session, t);
  }

  closed(session: SettingsSession): void {
    const t = this.sessions.get(session);
    if (!t || t.streams === 0) return;
    t.streams -= 1;
    this.total -= 1;
    this.rebalance(session, t);
  }

  /** The stream window a session with `streams` open gets now (at most `max`, its own full window). */
  windowFor(streams: number, max = this.maxWindow): number {
    return Math.min(step(this.sessionBytes / Math.max(1, streams)), this.processShare, max);
  }

  /** Streams counted, and each tracked session's announced window (for the admin endpoint and tests). */
  stats(): { streams: number; sessions: number; processShare: number } {
    return { streams: this.total, sessions: this.sessions.size, processShare: this.processShare };
  }

  private rebalance(session: SettingsSession, t: Tracked): void {
    const share = Math.min(step(this.processBytes / Math.max(1, this.total)), this.maxWindow);
    if (share !== this.processShare) {
      this.processShare = share;
      for (const [s, other] of this.sessions) this.announce(s, other);
      return;
    }
    this.announce(session, t);
  }

  /** Sends the session's window when it changed; while a SETTINGS awaits its ACK, once the ACK comes. */
  private announce(session: SettingsSession, t: Tracked): void {
    if (session.destroyed) return;
    const want = this.windowFor(t.streams, t.max);
    if (want === t.window) return;
    if (session.pendingSettingsAck) {
      if (t.waiting) return;
      t.waiting = true;
      session.once('localSettings', () => {
        t.waiting = false;
        this.announce(session, t);
      });
      return;
    }
    t.window = want;
    try {
      session.settings({ initialWindowSize: want });
    } catch {
      // A session closing under us: nothing left to bound.
    }
  }
}

/** The largest power of two ≤ `bytes`, never below 64 KiB. */
function step(bytes: number): number {
  return Math.max(MIN_STREAM_WINDOW, 2 ** Math.floor(Math.log2(Math.max(1, bytes))));
}

/** One budget for every HBONE session of the process (server and client side) unless told otherwise. */
export const PROCESS_WINDOW_BUDGET = new WindowBudget();
