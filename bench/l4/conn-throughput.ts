// Single-stream throughput for the conn-cost bench: one client connection through the chain sends as fast
// as the path allows; the echo process, told by the connection's first byte, discards instead of echoing
// and counts what arrived. The parent reads that count over IPC at both ends of a steady window, so the
// bytes still queued in the proxies when the window opens or closes do not count.

import * as net from 'node:net';

/** A connection whose first byte is this is a sink: what it sends is counted and dropped, never echoed. */
export const SINK_MARK = 0x00;

/** The echo process's handler: echo everything back, or, for a sink connection, count into `sunk`. */
export function echoOrSink(s: net.Socket, sunk: { bytes: number }): void {
  s.once('data', (first: Buffer) => {
    if (first[0] !== SINK_MARK) {
      s.write(first);
      s.pipe(s);
      return;
    }
    sunk.bytes += first.length;
    s.on('data', (d: Buffer) => {
      sunk.bytes += d.length;
    });
    // The socket allows half-open (the echo's listener is a proxy's): answer the client's end with ours.
    s.once('end', () => s.end());
  });
}

export interface Pump {
  /** Bytes the client handed to its socket so far. */
  readonly sent: number;
  /** Stops writing and closes the connection. */
  stop(): void;
}

/** Opens one sink connection to `host:port` and writes `chunkBytes` chunks with backpressure until stopped. */
export function pump(host: string, port: number, chunkBytes = 256 * 1024): Promise<Pump> {
  // The same bytes every time (after the mark): the data path copies them, it never looks at them.
  const chunk = Buffer.alloc(chunkBytes, 0x61);
  let sent = 0;
  let stopped = false;
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const more = (): void => {
      while (!stopped) {
        sent += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', more);
          return;
        }
      }
    };
    s.once('error', reject);
    s.once('connect', () => {
      s.on('error', () => {}); // a reset as the chain stops is not the measurement's failure
      s.write(Buffer.of(SINK_MARK));
      more();
      resolve({
        get sent() {
          return sent;
        },
        stop() {
          stopped = true;
          s.destroy();
        },
      });
    });
  });
}
