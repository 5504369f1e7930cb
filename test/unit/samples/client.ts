// Small loopback clients for the sample tests: one HTTP/1.1 request, one h2c request, and a raw
// TCP exchange that half-closes after writing. Everything here closes what it opens.

import { request as http1Request } from 'node:http';
import { type ClientHttp2Session, connect as http2Connect } from 'node:http2';
import { connect as tcpConnect } from 'node:net';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  localPort: number | undefined;
}

/** One HTTP/1.1 request on a fresh connection (no keep-alive, so nothing is left open). */
export function get1(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http1Request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          localPort: req.socket?.localPort,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** One request on an open h2c session. */
export function get2(session: ClientHttp2Session, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': 'GET' });
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h as Record<string, string | string[] | undefined>;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () =>
      resolve({ status, headers, body: Buffer.concat(chunks).toString('utf8'), localPort: undefined }),
    );
    stream.on('error', reject);
    stream.end();
  });
}

/** Opens an h2c (prior knowledge) session to a loopback port. */
export function open2(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** Closes an h2 session and waits for it. */
export function close2(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed) resolve();
    else session.close(() => resolve());
  });
}

/**
 * Writes `chunks` to a loopback TCP port one by one, half-closes, and collects everything the
 * server sends until it ends its side.
 */
export function exchange(port: number, chunks: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const got: Buffer[] = [];
    socket.on('data', (c: Buffer) => got.push(c));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(got));
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      socket.end();
    });
  });
}
