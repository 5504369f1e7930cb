// WebSocket for the echo sample (RFC 6455): the opening handshake on an HTTP/1.1 `Upgrade`, then
// every message back as it came. Only what test clients need: masked client frames (text, binary,
// continuation), ping/pong and the closing handshake; no extensions, no subprotocols.

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log/index.ts';

/** RFC 6455 §1.3: appended to the client's key before hashing it into `Sec-WebSocket-Accept`. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Larger frames are refused with close code 1009: the echo is for tests, not bulk transfer. */
export const MAX_FRAME_BYTES = 1024 * 1024;

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** Close codes used here (RFC 6455 §7.4.1). */
export const CLOSE = { normal: 1000, goingAway: 1001, protocolError: 1002, tooBig: 1009 } as const;

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** One parse step: a whole frame and the bytes after it, a need for more bytes, or a protocol error. */
export type ParseResult =
  | { kind: 'frame'; frame: Frame; rest: Buffer }
  | { kind: 'more' }
  | { kind: 'error'; code: number; reason: string };

/** `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}${WEBSOCKET_GUID}`).digest('base64');
}

/** Why an upgrade request is not a WebSocket opening handshake we can answer; undefined if it is. */
export function handshakeProblem(req: Pick<IncomingMessage, 'method' | 'headers'>): string | undefined {
  const h = req.headers;
  if (req.method !== 'GET') return 'a WebSocket handshake must be a GET';
  if (String(h.upgrade ?? '').toLowerCase() !== 'websocket') return 'only Upgrade: websocket is served';
  const connection = String(h.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((t) => t.trim());
  if (!connection.includes('upgrade')) return 'Connection must include upgrade';
  if (h['sec-websocket-version'] !== '13') return 'Sec-WebSocket-Version must be 13';
  const key = h['sec-websocket-key'];
  if (typeof key !== 'string' || Buffer.from(key, 'base64').length !== 16) {
    return 'Sec-WebSocket-Key must be 16 bytes in base64';
  }
  return undefined;
}

/** Parses one client frame from the front of `buf`; client frames must be masked (§5.1). */
export function parseFrame(buf: Buffer, maxBytes = MAX_FRAME_BYTES): ParseResult {
  if (buf.length < 2) return { kind: 'more' };
  const b0 = buf[0] ?? 0;
  const b1 = buf[1] ?? 0;
  const fin = (b0 & 0x80) !== 0;
  const opcode = b0 & 0x0f;
  if ((b0 & 0x70) !== 0) return { kind: 'error', code: CLOSE.protocolError, reason: 'RSV bits set' };
  if ((b1 & 0x80) === 0) {
    return { kind: 'error', code: CLOSE.protocolError, reason: 'client frames must be masked' };
  }
  const control = opcode >= 8;
  if (![0, 1, 2, 8, 9, 10].includes(opcode)) {
    return { kind: 'error', code: CLOSE.protocolError, reason: `unknown opcode ${opcode}` };
  }
  let length = b1 & 0x7f;
  let at = 2;
  if (length === 126) {
    if (buf.length < 4) return { kind: 'more' };
    length = buf.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    if (buf.length < 10) return { kind: 'more' };
    const big = buf.readBigUInt64BE(2);
    length = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    at = 10;
  }
  if (control && (length > 125 || !fin)) {
    return { kind: 'error', code: CLOSE.protocolError, reason: 'control frames are short and whole' };
  }
  if (length > maxBytes) {
    return { kind: 'error', code: CLOSE.tooBig, reason: `frames are limited to ${maxBytes} bytes` };
  }
  if (buf.length < at + 4 + length) return { kind: 'more' };
  const mask = buf.subarray(at, at + 4);
  const payload = Buffer.from(buf.subarray(at + 4, at + 4 + length));
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (mask[i & 3] ?? 0);
  return { kind: 'frame', frame: { fin, opcode, payload }, rest: buf.subarray(at + 4 + length) };
}

/** A server frame (never masked, §5.1). */
export function encodeFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const first = (fin ? 0x80 : 0) | opcode;
  let head: Buffer;
  if (payload.length < 126) {
    head = Buffer.from([first, payload.length]);
  } else if (payload.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = first;
    head[1] = 126;
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([head, payload]);
}

/** A close frame's payload: the code and an optional short reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const out = Buffer.alloc(2 + Buffer.byteLength(reason));
  out.writeUInt16BE(code, 0);
  out.write(reason, 2);
  return out;
}

/** Serves WebSocket upgrades with an echo; `drain` closes every open one with 1001 (going away). */
export class WebSocketEcho {
  readonly #log: Logger;
  readonly #open = new Set<Duplex>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The http server's `upgrade` event: answer the handshake (or 400) and echo frames. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.#log.debug({ err }, 'websocket socket error'));
    const problem = handshakeProblem(req);
    if (problem) {
      const body = `${problem}\n`;
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
        `sec-websocket-accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\n\r\n`,
    );
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
    this.#echo(socket, head);
  }

  drain(): void {
    for (const socket of this.#open) closeWith(socket, CLOSE.goingAway, 'server shutting down');
  }

  #echo(socket: Duplex, head: Buffer): void {
    let pending: Buffer = Buffer.alloc(0);
    let closing = false;
    const onData = (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (!closing) {
        const r = parseFrame(pending);
        if (r.kind === 'more') return;
        if (r.kind === 'error') {
          closing = true;
          closeWith(socket, r.code, r.reason);
          return;
        }
        pending = r.rest;
        const { fin, opcode, payload } = r.frame;
        if (opcode === OPCODE.close) {
          // Echo the peer's code (or 1000 when it gave none) and end: the closing handshake.
          closing = true;
          socket.end(
            encodeFrame(
              OPCODE.close,
              payload.length >= 2 ? payload.subarray(0, 2) : closePayload(CLOSE.normal),
            ),
          );
          return;
        }
        if (opcode === OPCODE.ping) socket.write(encodeFrame(OPCODE.pong, payload));
        else if (opcode !== OPCODE.pong) socket.write(encodeFrame(opcode, payload, fin));
      }
    };
    socket.on('data', onData);
    socket.on('end', () => socket.end());
    if (head.length > 0) onData(Buffer.from(head));
  }
}

function closeWith(socket: Duplex, code: number, reason: string): void {
  if (socket.writableEnded) return;
  socket.end(encodeFrame(OPCODE.close, closePayload(code, reason)));
}
