// HBONE's numbers (DESIGN.md §4, ambient-reference.md §2): the port, stream limits, timeouts, and the
// HTTP/2 flow-control windows large enough that one stream can fill the pipe.

import type { Settings } from 'node:http2';
import { AmbitError } from '../errors/index.ts';
import { HBONE_ERRORS } from './errors.ts';

export const HBONE_PORT = 15008;
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
