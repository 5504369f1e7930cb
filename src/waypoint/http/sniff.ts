// Protocol detection for `auto` ports: the first bytes of a connection say whether it is h2c (the
// HTTP/2 connection preface), HTTP/1 (a request line), or something else, which is passed through as TCP.

import type { Duplex } from 'node:stream';

export type Sniffed = 'http1' | 'h2c' | 'tcp';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Bytes read at most before deciding; a request line longer than this is not sniffed as HTTP. */
export const SNIFF_LIMIT_BYTES = 8 * 1024;

// A request line: method token, SP, a target without spaces, SP, HTTP/1.x. Checked one byte at a time so
// that a prefix that can no longer become one is decided (TCP) without waiting for more.
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;

/** How far `line` (the bytes so far, without CRLF) can still be an HTTP/1 request line. */
function requestLine(line: string, complete: boolean): 'yes' | 'no' | 'maybe' {
  let i = 0;
  while (i < line.length && TCHAR.test(line[i] as string)) i++;
  if (i === line.length) return complete || i > 32 ? 'no' : 'maybe';
  if (i === 0 || line[i] !== ' ') return 'no';
  const rest = line.slice(i + 1);
  const sp = rest.indexOf(' ');
  if (sp === -1) return complete ? 'no' : /^\S*$/.test(rest) ? 'maybe' : 'no';
  if (sp === 0) return 'no';
  const version = rest.slice(sp + 1);
  if (complete) return /^HTTP\/1\.[01]$/.test(version) ? 'yes' : 'no';
  return 'HTTP/1.1'.startsWith(version) || /^HTTP\/1\.[01]$/.test(version) ? 'maybe' : 'no';
}

/**
 * What `head` (the first bytes of a connection) is, or undefined while it could still be more than one
 * thing. `ended`: no more bytes will come (then a partial match is TCP).
 */
export function sniff(head: Buffer, ended = false): Sniffed | undefined {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
    if (head.length >= H2_PREFACE.length) return 'h2c';
    // "PRI " is also a token and SP; only the preface matters for it.
    return ended ? 'tcp' : undefined;
  }
  const text = head.subarray(0, SNIFF_LIMIT_BYTES).toString('latin1');
  const eol = text.indexOf('\r\n');
  const verdict = requestLine(eol === -1 ? text : text.slice(0, eol), eol !== -1);
  if (verdict === 'yes') return 'http1';
  if (verdict === 'no' || ended || head.length >= SNIFF_LIMIT_BYTES) return 'tcp';
  return undefined;
}

/** What sniffing found; for `tcp` after the client already ended, `head` holds the bytes it sent. */
export interface SniffResult {
  protocol: Sniffed;
  /** Bytes that could not be put back (the client ended before the decision); write them first. */
  head?: Buffer;
}

/**
 * Reads from `conn` until `sniff` decides (or `timeoutMs` passes: TCP, for protocols where the server
 * speaks first), then puts the bytes back and leaves `conn` paused for whoever serves it.
 */
export function sniffConnection(conn: Duplex, timeoutMs: number): Promise<SniffResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (protocol: Sniffed, ended: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.off('data', onData);
      conn.off('end', onEnd);
      conn.off('close', onEnd);
      conn.pause();
      const head = Buffer.concat(chunks);
      // A stream that emitted 'end' takes nothing back: its bytes travel with the result instead.
      if (ended) resolve({ protocol: 'tcp', head });
      else {
        if (head.length > 0 && !conn.destroyed) conn.unshift(head);
        resolve({ protocol });
      }
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const what = sniff(Buffer.concat(chunks));
      if (what) finish(what, false);
    };
    const onEnd = () => finish('tcp', true);
    const timer = setTimeout(() => finish('tcp', false), timeoutMs);
    conn.on('data', onData);
    conn.once('end', onEnd);
    conn.once('close', onEnd);
  });
}
