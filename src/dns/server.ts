// A DNS server on one host:port, UDP and TCP: each question is answered from the owner's name table
// when the table knows the name, forwarded to the upstreams when it does not, refused when there are
// none. Every query goes through the same phases: parse → look up → answer or forward; nothing a
// client sends can throw out of them.

import dgram from 'node:dgram';
import net, { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { AmbitError, hasCode } from '../errors/index.ts';
import type { Logger } from '../log/index.ts';
import { DNS_ERRORS, listenError } from './errors.ts';
import { type Forwarding, forward, type Upstream } from './forward.ts';
import { answer, fit, MAX_TCP_MESSAGE, parseQuery, type Query, type Rcode, tableAnswer } from './message.ts';
import {
  type AnswerSource,
  type DnsLabels,
  type DnsMetrics,
  type DropReason,
  queryTypeLabel,
} from './metrics.ts';
import type { Lookup, NameTable } from './names.ts';
import { DnsTcpConnection } from './tcp.ts';

export interface DnsServerOptions {
  /** Where to listen; both UDP and TCP on the same host:port (port 0 = any; then read `server.port`). */
  host: string;
  port: number;
  /** Called per question; swap tables freely (the ztunnel rebuilds its table on every config change). A table that throws gets SERVFAIL. */
  table: () => NameTable;
  /** Where names the table calls 'unknown' go; empty = answer REFUSED at once (no network). */
  upstreams: ReadonlyArray<{ host: string; port: number }>;
  /** Per upstream attempt; after the last upstream fails or times out the client gets SERVFAIL. Default 2000. */
  upstreamTimeoutMs?: number;
  /** Answer TTL in seconds for names from the table. Default 30. */
  ttl?: number;
  metrics?: DnsMetrics;
  /**
   * Bounds: queries being forwarded at once (past it a query that would be forwarded is answered
   * SERVFAIL at once, counted as dropped{reason="overload"}: the client fails fast or tries its next
   * nameserver, and nothing is buffered), TCP connections at once (past it a connection is closed at
   * once, dropped{reason="tcp_limit"}), TCP idle time before the server closes a connection.
   */
  limits?: Partial<{ maxInFlight: number; maxTcpConnections: number; tcpIdleMs: number }>;
  log?: Logger;
  /** The workload behind a client address, for Istio's source_canonical_* labels; `unknown` without it. */
  source?: (clientAddress: string) => { canonicalService: string; canonicalRevision: string } | undefined;
}

export const DNS_DEFAULTS = {
  upstreamTimeoutMs: 2_000,
  ttl: 30,
  maxInFlight: 1_024,
  maxTcpConnections: 256,
  tcpIdleMs: 10_000,
} as const;

/** Port 0 binds UDP on any port and TCP on the same one; another process may hold that TCP port. */
const PORT_TRIES = 8;
/** A failure that repeats per query (upstreams down, a broken table) is logged at most this often; the metrics count every one. */
const LOG_EVERY_MS = 10_000;

type Send = (answer: Buffer) => void;
type Transport = 'udp' | 'tcp';

function positive(name: string, value: number, integer = true): number {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new AmbitError(
      DNS_ERRORS.BAD_OPTIONS,
      `DNS server option ${name} must be a positive ${integer ? 'integer' : 'number'}, not ${value}`,
      {
        detail: { option: name, value },
      },
    );
  }
  return value;
}

export class DnsServer {
  private readonly opts: DnsServerOptions;
  private readonly upstreams: readonly Upstream[];
  private readonly timeoutMs: number;
  private readonly ttl: number;
  private readonly maxInFlight: number;
  private readonly maxTcp: number;
  private readonly idleMs: number;
  private readonly forwards = new Set<Forwarding>();
  private readonly connections = new Set<DnsTcpConnection>();
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private boundPort = 0;
  private closed = false;
  /** Per message: when it was last logged, and how many were left unlogged since. */
  private readonly logged = new Map<string, { at: number; unlogged: number }>();

  constructor(opts: DnsServerOptions) {
    this.opts = opts;
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65_535) {
      throw new AmbitError(DNS_ERRORS.BAD_OPTIONS, `DNS server port must be 0-65535, not ${opts.port}`, {
        detail: { option: 'port', value: opts.port },
      });
    }
    this.upstreams = opts.upstreams.map((u) => ({ host: u.host, port: u.port }));
    this.timeoutMs = positive('upstreamTimeoutMs', opts.upstreamTimeoutMs ?? DNS_DEFAULTS.upstreamTimeoutMs);
    this.ttl = opts.ttl ?? DNS_DEFAULTS.ttl;
    if (!Number.isInteger(this.ttl) || this.ttl < 0) positive('ttl', this.ttl);
    const limits = opts.limits ?? {};
    this.maxInFlight = positive('limits.maxInFlight', limits.maxInFlight ?? DNS_DEFAULTS.maxInFlight);
    this.maxTcp = positive(
      'limits.maxTcpConnections',
      limits.maxTcpConnections ?? DNS_DEFAULTS.maxTcpConnections,
    );
    this.idleMs = positive('limits.tcpIdleMs', limits.tcpIdleMs ?? DNS_DEFAULTS.tcpIdleMs);
  }

  /** The bound port (0 before start). */
  get port(): number {
    return this.boundPort;
  }

  /** Binds UDP and TCP; rejects with AMBIT_ERR_DNS_LISTEN naming host:port. */
  async start(): Promise<void> {
    if (this.udp || this.closed) throw new AmbitError(DNS_ERRORS.BAD_OPTIONS, 'a DNS server starts once');
    const { host, port } = this.opts;
    for (let tries = port === 0 ? PORT_TRIES : 1; ; tries--) {
      const udp = await this.bindUdp(port);
      const bound = udp.address().port;
      try {
        this.tcp = await this.listenTcp(bound);
        this.udp = udp;
        this.boundPort = bound;
        this.opts.log?.info({ host, port: bound, upstreams: this.upstreams.length }, 'DNS server listening');
        return;
      } catch (err) {
        udp.close();
        if (tries <= 1 || !hasCode(err, DNS_ERRORS.LISTEN) || err.detail?.errno !== 'EADDRINUSE') throw err;
      }
    }
  }

  /** Stops both listeners, ends TCP connections, cancels queries being forwarded. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.forwards) f.cancel();
    for (const c of this.connections) c.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : undefined,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : undefined,
    ]);
  }

  private bindUdp(port: number): Promise<dgram.Socket> {
    const { host } = this.opts;
    const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    return new Promise((resolve, reject) => {
      socket.once('error', (err) => {
        socket.close();
        reject(listenError('udp', host, port, err));
      });
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.removeAllListeners('error');
        socket.on('error', (err) => this.opts.log?.warn({ err }, 'DNS UDP socket error'));
        socket.on('message', (msg, rinfo) => {
          this.handle(msg, 'udp', rinfo.address, (out) => {
            if (this.closed) return;
            socket.send(out, rinfo.port, rinfo.address, (err) => {
              if (err) this.drop('send');
            });
          });
        });
        resolve(socket);
      });
    });
  }

  private listenTcp(port: number): Promise<net.Server> {
    const { host } = this.opts;
    const server = net.createServer({ allowHalfOpen: true });
    server.on('connection', (socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(listenError('tcp', host, port, err)));
      server.listen({ host, port, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.opts.log?.warn({ err }, 'DNS TCP listener error'));
        resolve(server);
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.closed || this.connections.size >= this.maxTcp) {
      this.drop('tcp_limit');
      socket.destroy();
      return;
    }
    const remote = socket.remoteAddress ?? '';
    const connection = new DnsTcpConnection(
      socket,
      (message, send, conn) => this.handle(message, 'tcp', remote, send, conn),
      this.idleMs,
      this.opts.metrics,
    );
    this.connections.add(connection);
    socket.on('close', () => this.connections.delete(connection));
  }

  private drop(reason: DropReason): void {
    this.opts.metrics?.dropped(reason);
  }

  private labels(type: string, transport: Transport, client: string): DnsLabels {
    const source = this.opts.source?.(client);
    return {
      request_query_type: type,
      request_protocol: transport,
      source_canonical_service: source?.canonicalService ?? 'unknown',
      source_canonical_revision: source?.canonicalRevision ?? 'unknown',
    };
  }

  private answered(send: Send, bytes: Buffer | undefined, source: AnswerSource, rcode: string): void {
    if (bytes === undefined) {
      this.drop('send');
      return;
    }
    send(bytes);
    this.opts.metrics?.answer(source, rcode);
  }

  /** One message from a client: parse → look up → answer, forward or refuse. Never throws. */
  private handle(
    bytes: Buffer,
    transport: Transport,
    client: string,
    send: Send,
    conn?: DnsTcpConnection,
  ): void {
    try {
      const parsed = parseQuery(bytes);
      if (!parsed.ok) {
        this.opts.metrics?.request(this.labels('unknown', transport, client));
        if (parsed.reply && parsed.rcode) this.answered(send, parsed.reply, 'server', parsed.rcode);
        else this.drop(parsed.reason as DropReason);
        this.opts.log?.debug({ client, transport, reason: parsed.reason }, 'malformed DNS query');
        return;
      }
      const q = parsed.query;
      const labels = this.labels(queryTypeLabel(q.question.type), transport, client);
      this.opts.metrics?.request(labels);
      const limit = transport === 'udp' ? q.udpSize : MAX_TCP_MESSAGE;
      const ra = this.upstreams.length > 0;
      const refuse = (rcode: Rcode): void =>
        this.answered(send, fit(answer(q, rcode, [], { aa: false, ra }), limit), 'server', rcode);
      let found: Lookup;
      try {
        found =
          q.question.class === 'IN' || q.question.class === undefined
            ? this.opts.table().lookup(q.question.name, q.question.type)
            : { kind: 'unknown' };
      } catch (err) {
        this.logSometimes(
          'error',
          { err, name: q.question.name },
          'DNS name table failed; answering SERVFAIL',
        );
        refuse('SERVFAIL');
        return;
      }
      const local = tableAnswer(q, found, { ttl: this.ttl, ra, aa: true });
      if (local) {
        this.answered(send, fit(local.bytes, limit), 'table', local.rcode);
      } else if (!ra) {
        refuse('REFUSED');
      } else if (this.forwards.size >= this.maxInFlight || this.closed) {
        this.drop('overload');
        refuse('SERVFAIL');
      } else {
        this.forward(q, bytes, transport, labels, send, limit, conn);
      }
    } catch (err) {
      // A bug, not a client's doing: logged, and the server goes on.
      this.opts.log?.error({ err, client, transport }, 'DNS query handling failed');
    }
  }

  private forward(
    q: Query,
    bytes: Buffer,
    transport: Transport,
    labels: DnsLabels,
    send: Send,
    limit: number,
    conn: DnsTcpConnection | undefined,
  ): void {
    const metrics = this.opts.metrics;
    const f = forward({
      bytes,
      id: q.id,
      question: q.question,
      transport,
      upstreams: this.upstreams,
      timeoutMs: this.timeoutMs,
    });
    this.forwards.add(f);
    conn?.forwards.add(f);
    metrics?.upstreamRequest(labels);
    const started = performance.now();
    let failed = false;
    f.promise
      .then(
        (relayed) => this.answered(send, fit(relayed.bytes, limit), 'upstream', relayed.rcode),
        (err: unknown) => {
          if (hasCode(err, DNS_ERRORS.CLOSED)) {
            this.drop('closed');
            return;
          }
          failed = true;
          this.logSometimes('warn', { err }, 'DNS upstreams failed; answering SERVFAIL');
          this.answered(
            send,
            fit(answer(q, 'SERVFAIL', [], { aa: false, ra: true }), limit),
            'upstream',
            'SERVFAIL',
          );
        },
      )
      .catch((err: unknown) => this.opts.log?.error({ err }, 'DNS answer failed'))
      .finally(() => {
        this.forwards.delete(f);
        conn?.forwards.delete(f);
        conn?.settled();
        metrics?.upstreamDone(labels, (performance.now() - started) / 1000, failed);
      });
  }

  private logSometimes(level: 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const seen = this.logged.get(message);
    if (seen && now - seen.at < LOG_EVERY_MS) {
      seen.unlogged++;
      return;
    }
    this.opts.log?.[level]({ ...fields, unloggedSinceLast: seen?.unlogged ?? 0 }, message);
    this.logged.set(message, { at: now, unlogged: 0 });
  }
}
