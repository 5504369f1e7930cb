// The client's side of one request, the same for HTTP/1.1 (Node's request/response pair) and h2c (a
// server stream), so the exchange is written once: the request as routing sees it, its body, and how
// the response head, body, trailers or a reset go back.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { resetStream } from '../../hbone/index.ts';
import type { Headers } from './headers.ts';

export interface Downstream {
  readonly protocol: 'HTTP/1.1' | 'HTTP/2';
  readonly method: string;
  /** The request target as received (path and query). */
  readonly path: string;
  readonly authority: string;
  /** Lower-case names, no pseudo-headers. */
  readonly headers: Headers;
  readonly body: Readable;
  /** Where the response body goes (respects its backpressure through 'drain'). */
  readonly sink: Writable;
  readonly headersSent: boolean;
  /** Sends the response head; `endOfStream`: there is no body (HTTP/2: a trailers-only response). */
  respond(status: number, headers: Headers, endOfStream: boolean): void;
  /** Ends the response body, with trailers when the backend sent some. */
  end(trailers?: Headers): void;
  /** Ends the response abruptly (the backend reset it): HTTP/1 loses its connection, HTTP/2 the stream. */
  reset(): void;
  /** `cb` runs once when the client goes away before the response is complete. */
  onAbort(cb: () => void): void;
}

export function http1Downstream(req: IncomingMessage, res: ServerResponse): Downstream {
  return {
    protocol: 'HTTP/1.1',
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    authority: req.headers.host ?? '',
    headers: req.headers,
    body: req,
    sink: res,
    get headersSent() {
      return res.headersSent;
    },
    respond(status, headers, endOfStream) {
      res.writeHead(status, headers as OutgoingHttpHeaders);
      if (endOfStream) res.end();
    },
    end(trailers) {
      if (trailers) res.addTrailers(trailers as OutgoingHttpHeaders);
      res.end();
    },
    reset() {
      // A TCP socket gets a real RST; the tunnel's stream is destroyed with an error, which Node sends
      // as RST_STREAM (close(code) may end it cleanly first, see h2Downstream.reset).
      if (req.socket instanceof net.Socket) resetStream(req.socket);
      else (req.socket as Duplex).destroy(new Error('the upstream response was reset'));
    },
    onAbort(cb) {
      res.once('close', () => {
        if (!res.writableFinished) cb();
      });
    },
  };
}

function text(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

export function h2Downstream(stream: http2.ServerHttp2Stream, all: http2.IncomingHttpHeaders): Downstream {
  const headers: Headers = {};
  for (const [name, value] of Object.entries(all)) if (!name.startsWith(':')) headers[name] = value;
  let trailers: Headers | undefined;
  let complete = false;
  stream.on('wantTrailers', () => {
    complete = true;
    stream.sendTrailers((trailers ?? {}) as http2.OutgoingHttpHeaders);
  });
  return {
    protocol: 'HTTP/2',
    method: text(all[':method']),
    path: text(all[':path']),
    authority: text(all[':authority']) || text(all.host),
    headers,
    body: stream,
    sink: stream,
    get headersSent() {
      return stream.headersSent;
    },
    respond(status, head, endOfStream) {
      if (endOfStream) complete = true;
      stream.respond(
        { ...(head as http2.OutgoingHttpHeaders), ':status': status },
        {
          endStream: endOfStream,
          waitForTrailers: !endOfStream,
        },
      );
    },
    end(t) {
      trailers = t;
      stream.end();
    },
    reset() {
      // destroy(err), not close(code): on a stream whose request side already ended, close() let the
      // client see a clean end (rstCode 0) in Node 24; destroy with an error sends RST_STREAM INTERNAL_ERROR.
      if (!stream.destroyed) stream.destroy(new Error('the upstream response was reset'));
    },
    onAbort(cb) {
      stream.once('close', () => {
        if (!complete || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) cb();
      });
    },
  };
}
