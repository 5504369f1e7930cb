// Small HTTP helpers shared by the echo and storefront samples: JSON answers, the error body
// shape, and the per-socket bookkeeping that lets close() drop idle keep-alive connections.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';

/** A request as the samples see it: HTTP/1.1 (node:http) or HTTP/2 (node:http2 compat). */
export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;

/** The body of every error a sample answers with. */
export interface ErrorBody {
  error: { code: string; message: string } & Record<string, unknown>;
}

/** Statuses that never carry a body (RFC 9110 §6.4.1). */
function bodyless(status: number, method: string | undefined): boolean {
  return method === 'HEAD' || status === 204 || status === 205 || status === 304;
}

/** Sends `body` as JSON with `status`; does nothing if the client has already gone. */
export function sendJson(req: AnyRequest, res: AnyResponse, status: number, body: unknown): void {
  send(req, res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

/** Sends a text body of the given type; does nothing if the client has already gone. */
export function send(req: AnyRequest, res: AnyResponse, status: number, type: string, text: string): void {
  if (res.headersSent || res.destroyed) return;
  const payload = bodyless(status, req.method) ? '' : text;
  res.statusCode = status;
  if (status !== 204 && status !== 304) {
    res.setHeader('content-type', type);
    res.setHeader('content-length', Buffer.byteLength(text));
  }
  res.end(payload);
}

/** The error body: a stable code, a message that says what to do, and extra fields. */
export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, ...extra } };
}

/**
 * Counts in-flight HTTP/1.1 requests per socket, so a closing server can destroy keep-alive
 * sockets that sit between requests and let busy ones finish. HTTP/2 sessions drain with GOAWAY.
 */
export class Http1Activity {
  readonly #active = new WeakMap<Socket, number>();
  #draining = false;

  /** Call at the start of every request; marks the response to close the connection when draining. */
  begin(req: AnyRequest, res: AnyResponse): void {
    if (req.httpVersionMajor !== 1) return;
    const socket = req.socket as Socket;
    this.#active.set(socket, (this.#active.get(socket) ?? 0) + 1);
    if (this.#draining) res.setHeader('connection', 'close');
    res.once('close', () => this.#active.set(socket, (this.#active.get(socket) ?? 1) - 1));
  }

  /** True for an HTTP/1.1 socket with no request in flight. */
  isIdle(socket: Socket): boolean {
    return this.#active.get(socket) === 0;
  }

  drain(): void {
    this.#draining = true;
  }
}
