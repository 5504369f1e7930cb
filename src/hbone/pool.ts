// The client side of HBONE: a pool of HTTP/2 connections per (source identity, accepted destination
// identities, destination ip:port), each carrying up to N CONNECT streams, and the CONNECT exchange itself.

import type * as http2 from 'node:http2';
import { AmbitError } from '../errors/index.ts';
import { parseSpiffeId, type RevocationList, type SpiffeId } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import { checkSocketAddr, formatAuthority, parseAuthority, type SocketAddr } from './authority.ts';
import { type ConnectionStats, type ConnectionTimers, HboneConnection } from './connection.ts';
import { connectError, HBONE_ERRORS, statusError } from './errors.ts';
import { requestHeaders } from './headers.ts';
import { ContextCache, type TlsMaterial } from './material.ts';
import {
  DEFAULT_MAX_STREAMS,
  DEFAULT_SPARE_IDLE_MS,
  type FlowControl,
  flowControlOptions,
  HBONE_PORT,
  intOption,
} from './settings.ts';

const log = logger('hbone');

export interface HbonePoolOptions {
  /** Streams per HTTP/2 connection before another is opened (default 100; fewer if the server says so). */
  maxStreamsPerConnection?: number;
  /** Close a connection after this long with no stream (default 5 min). */
  idleTimeoutMs?: number;
  /**
   * Close an idle connection sooner, after this (default 15 s), while another to the same peer is open:
   * the last one stays for the whole idle timeout.
   */
  spareIdleTimeoutMs?: number;
  /** Told each time a connection closes for being idle (a proxy gives the memory back). */
  onIdleClose?: () => void;
  /** PING every … (default 10 s) and give up on the connection if unanswered after … (default 20 s). */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** TCP + TLS + SETTINGS, and separately the CONNECT answer, must each arrive within this (default 10 s). */
  connectTimeoutMs?: number;
  flowControl?: Partial<FlowControl>;
  /** The certificates refused now although they chain to the bundle (asked at every handshake). */
  revoked?: () => RevocationList;
  /** Source identities whose TLS contexts are kept built (default 256, least recently used forgotten first). */
  maxContexts?: number;
}

export interface ConnectRequest {
  /** The source identity's current material; called per new connection so renewed certificates are used. */
  source: () => TlsMaterial;
  /** Where to dial: the destination's (or its waypoint's) IP and HBONE port (default 15008). */
  destination: { address: string; port?: number };
  /** The identities the server may present (workload, service SANs, or waypoint). */
  accepted: readonly SpiffeId[];
  /** The CONNECT `:authority`, `ip:port`: the pod and target port, or the VIP and port when via a waypoint. */
  authority: string;
  /** `forwarded`, `baggage`, `traceparent`, …; a `traceparent` is started when none is given. */
  headers?: Readonly<Record<string, string>>;
}

export interface HboneTunnel {
  /** Bytes both ways: write to send to the destination, read what it sends back. `end()` half-closes. */
  stream: http2.ClientHttp2Stream;
  /** The server's 200 answer, including `baggage` describing the destination when it sends one. */
  responseHeaders: http2.IncomingHttpHeaders;
  /** The SPIFFE ID the server proved (one of `accepted`). */
  peerIdentity: SpiffeId;
  /** The identity this end presented. */
  sourceIdentity: SpiffeId;
  /** The headers sent with the CONNECT (with the `traceparent` used). */
  requestHeaders: Record<string, string>;
  /** Which pooled connection carries the stream (for logs and /connections). */
  connectionId: number;
}

export interface PoolStats {
  connections: number;
  streams: number;
  byKey: Array<{
    key: string;
    source: SpiffeId;
    destination: string;
    accepted: SpiffeId[];
    connections: ConnectionStats[];
  }>;
}

/**
 * The pool key: source identity, accepted identities (sorted, so order does not split the pool), and the
 * destination `ip:port`. Connections are shared only when all three match.
 */
export function poolKey(source: SpiffeId, accepted: readonly SpiffeId[], destination: SocketAddr): string {
  const ids = [...new Set(accepted)].sort();
  return `${source}|${ids.join(',')}|${formatAuthority(destination)}`;
}

interface Entry {
  source: SpiffeId;
  accepted: SpiffeId[];
  destination: SocketAddr;
  conns: HboneConnection[];
}

function badRequest(why: string, detail?: Record<string, unknown>): AmbitError {
  return new AmbitError(HBONE_ERRORS.BAD_OPTIONS, `HBONE connect request: ${why}`, { detail });
}

export class HbonePool {
  private readonly entries = new Map<string, Entry>();
  private readonly contexts: ContextCache;
  private readonly maxStreams: number;
  private readonly timers: ConnectionTimers;
  private readonly flow: FlowControl;
  private readonly revoked: (() => RevocationList) | undefined;
  private readonly onIdleClose: (() => void) | undefined;
  private nextId = 1;
  private closed = false;

  constructor(options: HbonePoolOptions = {}) {
    const where = 'HbonePool';
    this.maxStreams = intOption(
      where,
      'maxStreamsPerConnection',
      options.maxStreamsPerConnection ?? DEFAULT_MAX_STREAMS,
      1,
      2 ** 31 - 1,
    );
    this.timers = {
      idleTimeoutMs: intOption(where, 'idleTimeoutMs', options.idleTimeoutMs ?? 300_000, 1, 2 ** 31 - 1),
      spareIdleTimeoutMs: intOption(
        where,
        'spareIdleTimeoutMs',
        options.spareIdleTimeoutMs ?? DEFAULT_SPARE_IDLE_MS,
        1,
        2 ** 31 - 1,
      ),
      pingIntervalMs: intOption(where, 'pingIntervalMs', options.pingIntervalMs ?? 10_000, 1, 2 ** 31 - 1),
      pingTimeoutMs: intOption(where, 'pingTimeoutMs', options.pingTimeoutMs ?? 20_000, 1, 2 ** 31 - 1),
      connectTimeoutMs: intOption(
        where,
        'connectTimeoutMs',
        options.connectTimeoutMs ?? 10_000,
        1,
        2 ** 31 - 1,
      ),
    };
    this.flow = flowControlOptions(where, options.flowControl);
    this.revoked = options.revoked;
    this.onIdleClose = options.onIdleClose;
    this.contexts = new ContextCache(options.maxContexts);
  }

  /**
   * Forgets the TLS contexts of source identities `holds` says are gone (call it when the node's
   * certificates change); pooled connections already open keep theirs until they close.
   */
  retainIdentities(holds: (identity: SpiffeId) => boolean): void {
    this.contexts.retain(holds);
  }

  /** Opens one CONNECT stream to `req.destination`, reusing a pooled connection when one has room. */
  async connect(req: ConnectRequest): Promise<HboneTunnel> {
    if (this.closed)
      throw new AmbitError(HBONE_ERRORS.CLOSED, 'the HBONE pool is closed; no new tunnels can be opened');
    if (typeof req?.source !== 'function')
      throw badRequest('"source" must be a function returning the TLS material');
    const destination = checkSocketAddr(
      { address: req.destination?.address, port: req.destination?.port ?? HBONE_PORT },
      'HBONE connect request: destination',
    );
    if (!Array.isArray(req.accepted) || req.accepted.length === 0) {
      throw badRequest('"accepted" must list at least one SPIFFE ID the server may present');
    }
    const accepted = req.accepted.map((id) => parseSpiffeId(id).id);
    const authority = formatAuthority(parseAuthority(req.authority));
    const headers = requestHeaders(req.headers);
    const material = req.source();
    const { context, bundle } = this.contexts.get(material);

    const key = poolKey(material.identity, accepted, destination);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { source: material.identity, accepted: [...new Set(accepted)].sort(), destination, conns: [] };
      this.entries.set(key, entry);
    }
    const server = formatAuthority(destination);
    for (;;) {
      if (this.closed) throw new AmbitError(HBONE_ERRORS.CLOSED, 'the HBONE pool closed while connecting');
      const ready = entry.conns.find((c) => c.hasCapacity());
      if (ready !== undefined) {
        // No await between the capacity check and open(): the count stays exact under concurrency.
        const stream = ready.open(authority, headers);
        return this.answer(ready, stream, authority, headers, server, material.identity);
      }
      let pending = entry.conns.find((c) => c.acceptsWaiter());
      if (pending === undefined) {
        pending = new HboneConnection({
          id: this.nextId++,
          key,
          destination,
          source: material.identity,
          context,
          bundle,
          accepted: entry.accepted,
          revoked: this.revoked?.(),
          maxStreams: this.maxStreams,
          flow: this.flow,
          timers: this.timers,
          onGone: (conn) => this.forget(conn),
          hasSibling: (conn) => this.hasSibling(conn),
          ...(this.onIdleClose ? { onIdleClose: this.onIdleClose } : {}),
        });
        entry.conns.push(pending);
      }
      pending.waiting += 1;
      try {
        await pending.ready;
      } finally {
        pending.waiting -= 1;
      }
    }
  }

  /** Waits for the server's answer to one CONNECT: 200 gives a tunnel, anything else a coded error. */
  private answer(
    conn: HboneConnection,
    stream: http2.ClientHttp2Stream,
    authority: string,
    headers: Record<string, string>,
    server: string,
    sourceIdentity: SpiffeId,
  ): Promise<HboneTunnel> {
    // Stays for the stream's life: an error after the answer surfaces as the stream's 'close'/'error' to
    // whoever reads it, and must never become an uncaught exception in between.
    stream.on('error', (err) => log.debug({ conn: conn.id, authority, err }, 'HBONE stream error'));
    return new Promise<HboneTunnel>((resolve, reject) => {
      let settled = false;
      const done = (err: Error | undefined, tunnel?: HboneTunnel) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.off('close', onClose);
        stream.off('error', onError);
        if (err !== undefined) reject(err);
        else resolve(tunnel!);
      };
      const timer = setTimeout(() => {
        stream.close(0x8 /* CANCEL */);
        done(
          connectError(
            server,
            conn.destination.port,
            `no answer to CONNECT ${authority} within ${this.timers.connectTimeoutMs} ms`,
          ),
        );
      }, this.timers.connectTimeoutMs);
      const onError = (err: Error) =>
        done(
          new AmbitError(
            HBONE_ERRORS.STREAM,
            `the CONNECT ${authority} to ${server} failed before an answer: ${err.message}`,
            {
              cause: err,
              detail: { server, authority },
            },
          ),
        );
      const onClose = () =>
        done(
          new AmbitError(
            HBONE_ERRORS.STREAM,
            `the CONNECT ${authority} to ${server} was closed before an answer (RST_STREAM code ${stream.rstCode ?? 'none'})`,
            { detail: { server, authority, rstCode: stream.rstCode } },
          ),
        );
      stream.once('error', onError);
      stream.once('close', onClose);
      stream.once('response', (responseHeaders) => {
        const status = Number(responseHeaders[':status']);
        if (status !== 200) {
          stream.close();
          done(statusError(status, server, authority));
          return;
        }
        done(undefined, {
          stream,
          responseHeaders,
          peerIdentity: conn.peerIdentity!,
          sourceIdentity,
          requestHeaders: headers,
          connectionId: conn.id,
        });
      });
    });
  }

  /** Whether another connection of the same key could take the next stream (then `conn` is spare). */
  private hasSibling(conn: HboneConnection): boolean {
    return this.entries.get(conn.key)?.conns.some((c) => c !== conn && c.hasCapacity()) ?? false;
  }

  private forget(conn: HboneConnection): void {
    const entry = this.entries.get(conn.key);
    if (entry === undefined) return;
    entry.conns = entry.conns.filter((c) => c !== conn);
    if (entry.conns.length === 0) this.entries.delete(conn.key);
  }

  /**
   * Cuts every connection whose server presented a certificate that is now revoked, with its tunnels
   * (call it when the revocation list changes). Returns how many connections were cut.
   */
  closeRevoked(): number {
    const revoked = this.revoked?.();
    if (!revoked?.size) return 0;
    let cut = 0;
    for (const entry of this.entries.values()) {
      for (const conn of [...entry.conns]) {
        if (conn.peerLeaf === undefined || !revoked.has(conn.peerLeaf)) continue;
        log.info(
          { conn: conn.id, serial: conn.peerLeaf.serialNumber },
          'HBONE server certificate revoked; closing',
        );
        conn.destroy();
        cut++;
      }
    }
    return cut;
  }

  /** Connections and streams per key, for the admin endpoint. */
  stats(): PoolStats {
    const byKey = [...this.entries].map(([key, e]) => ({
      key,
      source: e.source,
      destination: formatAuthority(e.destination),
      accepted: [...e.accepted],
      connections: e.conns.map((c) => c.stats()),
    }));
    const all = byKey.flatMap((k) => k.connections);
    return { connections: all.length, streams: all.reduce((n, c) => n + c.streams, 0), byKey };
  }

  /**
   * Stops opening tunnels, lets open streams finish for up to `graceMs`, then destroys what is left.
   * Resolves when every connection is gone.
   */
  async close(graceMs = 0): Promise<void> {
    this.closed = true;
    const conns = [...this.entries.values()].flatMap((e) => e.conns);
    if (conns.length === 0) return;
    const gone = Promise.all(conns.map((c) => new Promise<void>((resolve) => c.whenGone(resolve))));
    for (const c of conns) c.close();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const c of conns) c.destroy();
        resolve();
      }, graceMs);
    });
    await Promise.race([gone, deadline]);
    clearTimeout(timer);
    for (const c of conns) c.destroy();
    await gone;
  }
}
