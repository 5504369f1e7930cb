// Where names the table does not know go: the upstream resolvers, tried in order, one timeout per
// attempt. Over UDP from a fresh socket per attempt (a random source port and a random id make a
// forged answer hard to land); a truncated UDP answer is asked again of the same upstream over TCP.

import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net, { isIP, isIPv6 } from 'node:net';
import { type DecodedPacket, decode, type Question, RECURSION_AVAILABLE } from 'dns-packet';
import { AmbitError } from '../errors/index.ts';
import { DNS_ERRORS } from './errors.ts';

export interface Upstream {
  host: string;
  port: number;
}

const DNS_PORT = 53;

function badUpstream(text: string, item: string, why: string): AmbitError {
  return new AmbitError(
    DNS_ERRORS.BAD_UPSTREAM,
    `DNS upstream "${item}" in "${text}": ${why}; expected a comma-separated list of ip, ip:port or [ipv6]:port`,
    { detail: { text, item } },
  );
}

function parsePort(text: string, item: string, port: string): number {
  const n = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  if (!(n >= 1 && n <= 65_535)) throw badUpstream(text, item, `port "${port}" is not 1-65535`);
  return n;
}

/** Parses `host:port`, `[v6]:port` or a bare host (port 53) list, e.g. "198.18.0.254:53,127.0.0.1:5353"; throws AmbitError naming the flag text on bad input. */
export function parseUpstreams(text: string): Array<{ host: string; port: number }> {
  if (text.trim() === '') return [];
  return text.split(',').map((raw) => {
    const item = raw.trim();
    let host = item;
    let port = DNS_PORT;
    const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(item);
    if (bracketed) {
      host = bracketed[1] ?? '';
      if (bracketed[2] !== undefined) port = parsePort(text, item, bracketed[2]);
      if (!isIPv6(host)) throw badUpstream(text, item, `"${host}" is not an IPv6 address`);
      return { host, port };
    }
    const colons = item.split(':').length - 1;
    if (colons === 1) {
      const at = item.lastIndexOf(':');
      host = item.slice(0, at);
      port = parsePort(text, item, item.slice(at + 1));
    }
    // A resolver's own address cannot be a name: there would be nothing to resolve it with.
    if (isIP(host) === 0) {
      throw badUpstream(text, item, item === '' ? 'empty entry' : `"${host}" is not an IP address`);
    }
    if (colons === 1 && isIPv6(host))
      throw badUpstream(text, item, 'an IPv6 address with a port goes in brackets');
    return { host, port };
  });
}

/** The nameservers of a resolv.conf text (port 53), for a default upstream. */
export function resolvConfNameservers(text: string): Array<{ host: string; port: number }> {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const [key, address] = line
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/);
    if (key !== 'nameserver' || address === undefined || isIP(address) === 0) continue;
    if (!out.some((u) => u.host === address)) out.push({ host: address, port: DNS_PORT });
  }
  return out;
}

/** An upstream's answer, with the client's id put back. */
export interface Relayed {
  bytes: Buffer;
  rcode: string;
}

/** A forwarded query under way; `cancel` ends its sockets and rejects it with AMBIT_ERR_DNS_CLOSED. */
export interface Forwarding {
  promise: Promise<Relayed>;
  cancel(): void;
}

export interface ForwardRequest {
  /** The client's query, as it came. */
  bytes: Buffer;
  id: number;
  question: Question;
  /** The client's transport: a TCP client's query goes upstream over TCP. */
  transport: 'udp' | 'tcp';
  upstreams: readonly Upstream[];
  timeoutMs: number;
}

/** An answer an upstream gave up on: the next upstream may know better. */
const GAVE_UP = new Set(['SERVFAIL', 'REFUSED', 'NOTIMP']);

type Check = { ok: true; got: Got } | { ok: false; why: string };

interface Got {
  bytes: Buffer;
  rcode: string;
  truncated: boolean;
}

/** Whether `reply` answers our query (id and question), and with what. */
function check(reply: Buffer, id: number, q: Question): Check {
  let p: DecodedPacket & { rcode?: string };
  try {
    p = decode(reply);
  } catch {
    return { ok: false, why: 'an answer that does not decode' };
  }
  const got = p.questions?.[0];
  if (!p.flag_qr || p.id !== id) return { ok: false, why: 'an answer to another query' };
  // Servers often refuse (FORMERR, NOTIMP, REFUSED) with the header alone: that is this query's answer.
  const rcode = p.rcode ?? 'NOERROR';
  if (got === undefined && rcode !== 'NOERROR') {
    return { ok: true, got: { bytes: reply, rcode, truncated: p.flag_tc } };
  }
  if (got === undefined || got.type !== q.type || got.name.toLowerCase() !== q.name.toLowerCase()) {
    return { ok: false, why: 'an answer to another question' };
  }
  return { ok: true, got: { bytes: reply, rcode: p.rcode ?? 'NOERROR', truncated: p.flag_tc } };
}

function where(u: Upstream): string {
  return isIPv6(u.host) ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
}

function attemptError(u: Upstream, proto: string, why: string, cause?: unknown): AmbitError {
  return new AmbitError(DNS_ERRORS.UPSTREAM, `DNS upstream ${where(u)} over ${proto}: ${why}`, {
    cause,
    detail: { upstream: where(u), proto },
  });
}

function closedError(): AmbitError {
  return new AmbitError(DNS_ERRORS.CLOSED, 'the DNS server closed while the query was forwarded');
}

interface Attempt {
  promise: Promise<Got>;
  cancel(): void;
}

/**
 * The bookkeeping every attempt shares: one timeout, one settle that frees the socket, and a cancel.
 * `start` wires the socket and calls `done` with the answer, or `fail`.
 */
function attempt(
  u: Upstream,
  proto: 'udp' | 'tcp',
  timeoutMs: number,
  start: (done: (got: Got) => void, fail: (why: string, cause?: unknown) => void) => () => void,
): Attempt {
  let settle: (err: Error | undefined, got?: Got) => void = () => {};
  const promise = new Promise<Got>((resolve, reject) => {
    let release: (() => void) | undefined;
    let settled = false;
    const timer = setTimeout(() => settle(attemptError(u, proto, `no answer in ${timeoutMs} ms`)), timeoutMs);
    settle = (err, got) => {
      settle = () => {};
      settled = true;
      clearTimeout(timer);
      release?.();
      if (err) reject(err);
      else if (got) resolve(got);
    };
    release = start(
      (got) =>
        settle(GAVE_UP.has(got.rcode) ? attemptError(u, proto, `answered ${got.rcode}`) : undefined, got),
      (why, cause) => settle(attemptError(u, proto, why, cause)),
    );
    if (settled) release();
  });
  return { promise, cancel: () => settle(closedError()) };
}

/** Over UDP, from a connected socket of its own: the kernel drops datagrams from anyone else, and a closed port fails at once. */
function udpAttempt(u: Upstream, query: Buffer, id: number, q: Question, timeoutMs: number): Attempt {
  return attempt(u, 'udp', timeoutMs, (done, fail) => {
    const socket = dgram.createSocket(isIPv6(u.host) ? 'udp6' : 'udp4');
    socket.on('error', (err) => fail(err.message, err));
    socket.on('message', (reply) => {
      const c = check(reply, id, q);
      // Anything that is not the answer is ignored: the real one may still come.
      if (c.ok) done(c.got);
    });
    socket.connect(u.port, u.host, () => {
      socket.send(query, (err) => {
        if (err) fail(err.message, err);
      });
    });
    return () => socket.close();
  });
}

/** Over TCP: one connection, one length-prefixed message each way. */
function tcpAttempt(u: Upstream, query: Buffer, id: number, q: Question, timeoutMs: number): Attempt {
  return attempt(u, 'tcp', timeoutMs, (done, fail) => {
    const socket = net.connect({ host: u.host, port: u.port });
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(query.length);
    socket.write(Buffer.concat([prefix, query]));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2) return;
      const length = buffered.readUInt16BE(0);
      if (buffered.length < 2 + length) return;
      const c = check(buffered.subarray(2, 2 + length), id, q);
      if (c.ok) done(c.got);
      else fail(c.why);
    });
    socket.on('error', (err) => fail(err.message, err));
    socket.on('close', () => fail('closed the connection before answering'));
    return () => socket.destroy();
  });
}

/**
 * Forwards a query: the upstreams in order until one answers (NXDOMAIN is an answer; SERVFAIL,
 * REFUSED, a timeout or an error move on); rejects with AMBIT_ERR_DNS_UPSTREAM after the last.
 */
export function forward(req: ForwardRequest): Forwarding {
  let current: Attempt | undefined;
  let cancelled = false;
  // The client's id stays with us; each attempt carries a fresh one, written over the query's first
  // two bytes (the id field) so that the rest of the query goes upstream exactly as the client sent it.
  const tryOne = (u: Upstream, proto: 'udp' | 'tcp'): Promise<Got> => {
    if (cancelled) return Promise.reject(closedError());
    const id = randomInt(0, 65_536);
    const query = Buffer.from(req.bytes);
    query.writeUInt16BE(id, 0);
    const make = proto === 'udp' ? udpAttempt : tcpAttempt;
    current = make(u, query, id, req.question, req.timeoutMs);
    return current.promise;
  };
  const run = async (): Promise<Relayed> => {
    const failures: string[] = [];
    let last: unknown;
    for (const u of req.upstreams) {
      try {
        let got = await tryOne(u, req.transport);
        if (got.truncated && req.transport === 'udp') got = await tryOne(u, 'tcp');
        // Back to the client's id; and recursion is available to the client (we did it), whatever the
        // upstream says of itself. Both are header fields at fixed offsets: id at 0, flags at 2.
        const bytes = Buffer.from(got.bytes);
        bytes.writeUInt16BE(req.id, 0);
        bytes.writeUInt16BE(bytes.readUInt16BE(2) | RECURSION_AVAILABLE, 2);
        return { bytes, rcode: got.rcode };
      } catch (err) {
        if (cancelled) throw closedError();
        last = err;
        failures.push(err instanceof Error ? err.message : String(err));
      }
    }
    throw new AmbitError(
      DNS_ERRORS.UPSTREAM,
      `no DNS upstream answered ${req.question.name} ${req.question.type}: ${failures.join('; ')}`,
      { cause: last, detail: { name: req.question.name, type: req.question.type } },
    );
  };
  return {
    promise: run(),
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}
