// One TCP port serving HTTP/1.1 and h2c with prior knowledge: node:http2 accepts HTTP/1.1 only
// over TLS, so each connection's first bytes are compared with the HTTP/2 preface and the socket
// is handed to the matching server. With a certificate, the port serves TLS instead, and ALPN
// (`h2`, else HTTP/1.1) chooses the server.

import { createServer as createHttp1Server, type Server as Http1Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AnyRequest, AnyResponse } from './http.ts';

/** RFC 9113 §3.4: every HTTP/2 connection opens with these 24 bytes. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** The front listener and the two protocol servers behind it. */
export interface DualServer {
  /** Listen and close on this one. */
  readonly listener: Server;
  readonly http1: Http1Server;
  readonly http2: Http2Server;
}

/** A certificate and key (PEM) to serve TLS with. */
export interface ServingCertificate {
  certPem: string;
  keyPem: string;
}

/**
 * Builds a listener that sends each connection to HTTP/1.1 or HTTP/2 by its first bytes, or with
 * `tls`, by the protocol ALPN settled.
 */
export function createDualServer(
  onRequest: (req: AnyRequest, res: AnyResponse) => void,
  tls?: ServingCertificate,
): DualServer {
  const http1 = createHttp1Server(onRequest);
  const http2 = createHttp2Server(onRequest);
  const listener = tls
    ? createTlsServer(
        { cert: tls.certPem, key: tls.keyPem, ALPNProtocols: ['h2', 'http/1.1'] },
        (socket: TLSSocket) =>
          socket.alpnProtocol === 'h2' ? http2.emit('connection', socket) : http1.emit('connection', socket),
      )
    : createNetServer((socket) => sniff(socket, http1, http2));
  // The inner servers never listen; closing the front stops new connections for both.
  return { listener, http1, http2 };
}

/** True while `seen` is still a prefix of the preface; false once it differs. */
export function couldBePreface(seen: Buffer): boolean {
  const n = Math.min(seen.length, PREFACE.length);
  return seen.subarray(0, n).equals(PREFACE.subarray(0, n));
}

function sniff(socket: Socket, http1: Http1Server, http2: Http2Server): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const maybeH2 = couldBePreface(seen);
    if (maybeH2 && seen.length < PREFACE.length) return; // Need more bytes to decide.
    socket.off('data', onData);
    socket.off('error', onEarlyError);
    socket.pause();
    socket.unshift(seen);
    if (maybeH2) {
      // Http2Session reads what is already buffered on the socket before taking over its handle.
      http2.emit('connection', socket);
    } else {
      // The HTTP/1.1 parser reads buffered bytes through 'data' events, so the socket must flow.
      http1.emit('connection', socket);
      socket.resume();
    }
  };
  // A client that resets before it has said anything is no error of ours.
  const onEarlyError = () => socket.destroy();
  socket.on('data', onData);
  socket.on('error', onEarlyError);
}
