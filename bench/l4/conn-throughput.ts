// Single-stream throughput for the conn-cost bench, each way. Upload: one client connection through the
// chain sends as fast as the path allows; the echo process, told by the connection's first byte, discards
// instead of echoing and counts what arrived, and the parent reads that count over IPC at both ends of a
// steady window, so bytes still queued in the proxies when the window opens or closes do not count.
// Download: told by another first byte, the echo sends as fast as the path allows and the client counts.

import * as net from 'node:net';

/** A connection whose first byte is this is a sink: what it sends is counted and dropped, never echoed. */
export const SINK_MARK = 0x00;
/** A connection whose first byte is this is a source: the echo sends to it until it closes. */
export const SOURCE_MARK = 0x01;
const CHUNK_BYTES = 256 * 1024;

/** The echo process's handler: echo everything back, count into `sunk` (a sink), or send (a source). */
export function echoOrSink(s: net.Socket, sunk: { bytes: number }): void {
  s.once('data', (first: Buffer) => {
    if (first[0] === SOURCE_MARK) {
      send(s);
      return;
    }
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

/** Writes the same chunk to `s` with backpressure until it closes; returns the bytes handed over so far. */
function send(s: net.Socket): () => number {
  // The same bytes every time: the data path copies them, it never looks at them.
  const chunk = Buffer.alloc(CHUNK_BYTES, 0x61);
  let sent = 0;
  const more = (): void => {
    while (!s.destroyed && !s.writableEnded) {
      sent += chunk.length;
      if (!s.write(chunk)) {
        s.once('drain', more);
        return;
      }
    }
  };
  more();
  return () => sent;
}

export interface Pump {
  /** Bytes received (download) or handed to the socket (upload) so far. */
  readonly bytes: number;
  /** Stops and closes the connection. */
  stop(): void;
}

/**
 * Opens one connection to `host:port`: `up` writes with backpressure until stopped (the echo sinks it),
 * `down` counts what the echo sends until stopped.
 */
export function pump(host: string, port: number, direction: 'up' | 'down'): Promise<Pump> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let received = 0;
    s.once('error', reject);
    s.once('connect', () => {
      s.on('error', () => {}); // a reset as the chain stops is not the measurement's failure
      s.write(Buffer.of(direction === 'up' ? SINK_MARK : SOURCE_MARK));
      const sent = direction === 'up' ? send(s) : () => 0;
      if (direction === 'down')
        s.on('data', (d: Buffer) => {
          received += d.length;
        });
      resolve({
        get bytes() {
          return direction === 'up' ? sent() : received;
        },
        stop() {
          s.destroy();
        },
      });
    });
  });
}
