// A workaround for Node: an Http2Stream given string chunks in one writev garbles them (their first 16
// bytes arrive as freed memory). Reproduced on Node 24.21 with an HTTP/1 server answering on an HTTP/2
// stream: it writes its response head as a string and the body after it, in one writev, and the client
// receives garbage in place of `HTTP/1.1 404 Not`. An HBONE stream that carries HTTP/1 (the waypoint's,
// either way) therefore gets every chunk as a Buffer.

import type { Duplex } from 'node:stream';

type Chunk = { chunk: unknown; encoding: BufferEncoding | 'buffer' };
type Writev = (chunks: Chunk[], cb: (err?: Error | null) => void) => void;

/** `stream`, whose writev now turns string chunks into Buffers before the HTTP/2 layer sees them. */
export function buffersOnly<T extends Duplex>(stream: T): T {
  const s = stream as unknown as { _writev?: Writev };
  const writev = s._writev?.bind(stream);
  if (!writev) return stream;
  s._writev = (chunks, cb) =>
    writev(
      chunks.map((c) =>
        typeof c.chunk === 'string'
          ? { chunk: Buffer.from(c.chunk, c.encoding as BufferEncoding), encoding: 'buffer' }
          : c,
      ),
      cb,
    );
  return stream;
}
