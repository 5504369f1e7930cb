// The server side of HBONE: TLS on a socket the ztunnel (or waypoint) accepted, the certificate chosen by
// the address the client really dialled, then one HTTP/2 CONNECT stream per proxied connection.

import type { X509Certificate } from 'node:crypto';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { AmbitError } from '../errors/index.ts';
import {
  type RevocationList,
  type SpiffeId,
  type TrustBundle,
  trustDomainOf,
  verifyPeer,
} from '../identity/index.ts';
import { logger } from '../log/index.ts';
import { canonicalIp, formatAuthority, parseAuthority, type SocketAddr } from './authority.ts';
import { HBONE_ERRORS } from './errors.ts';
import { ALPN, ContextCache, peerChain, type TlsMaterial } from './material.ts';
import {
  DEFAULT_MAX_STREAMS,
  type FlowControl,
  flowControlOptions,
  h2Settings,
  intOption,
  PROCESS_WINDOW_BUDGET,
  sessionMemoryMb,
  TCP_KEEPALIVE_MS,
} from './settings.ts';
import { splice } from './splice.ts';

const log = logger('hbone');

/** What the component (ztunnel, waypoint) is asked for each CONNECT. */
export interface ConnectContext {
  /** Where the client asks to go (`:authority`). */
  authority: SocketAddr;
  /** The address the client's TCP connection was really sent to. */
  destinationAddress: string;
  /** The client's verified SPIFFE ID (same trust domain; who may connect is the callback's policy). */
  peerIdentity: SpiffeId;
  /** The client's TCP address as this end sees it. */
  peerAddress: SocketAddr | undefined;
  /** All request headers (`forwarded`, `baggage`, `traceparent`, …). */
  headers: http2.IncomingHttpHeaders;
  stream: http2.ServerHttp2Stream;
}

/**
 * 200 with an upstream socket to splice to; 200 with `take`, which is handed the tunnel's stream itself
 * once answered (a waypoint serves HTTP on it, with no copy between two sockets); or a refusal.
 */
export type ConnectDecision =
  | { status: 200; upstream: net.Socket; baggage?: string }
  | { status: 200; take: (stream: http2.ServerHttp2Stream) => void; baggage?: string }
  | { status: 400 | 401 | 503; reason: string; flags?: string };

/** One finished CONNECT, for metrics and the access log. */
export interface StreamRecord {
  destinationAddress: string;
  authority?: string;
  peerIdentity: SpiffeId;
  peerAddress: SocketAddr | undefined;
  status: number;
  reason?: string;
  /** The refusal's response flag, when the component gave one (e.g. `UO` over a connection limit). */
  flags?: string;
  /** Bytes from the client toward the upstream (request direction). */
  received: number;
  /** Bytes from the upstream back to the client (response direction). */
  sent: number;
  durationMs: number;
  error?: Error;
  headers: http2.IncomingHttpHeaders;
}

export interface HboneServerOptions {
  /** The certificate to present for a connection sent to `destinationAddress`; undefined closes it. */
  certFor: (destinationAddress: string) => TlsMaterial | undefined;
  onConnect: (ctx: ConnectContext) => ConnectDecision | Promise<ConnectDecision>;
  onComplete?: (record: StreamRecord) => void;
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce (default 100). */
  maxConcurrentStreams?: number;
  /** TLS handshake deadline (default 10 s). */
  handshakeTimeoutMs?: number;
  /**
   * PING each session every … (default 10 s) and destroy it, with its streams and their upstream
   * connections, when the answer is not back within … (default 20 s): a peer that vanished without a
   * FIN (a frozen process, a node gone) is noticed here, as the client side notices a dead server.
   */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  flowControl?: Partial<FlowControl>;
  /** The certificates refused now although they chain to the bundle (asked at every handshake and stream). */
  revoked?: () => RevocationList;
  /** Destination identities whose TLS contexts are kept built (default 256, least recently used forgotten first). */
  maxContexts?: number;
}

/**
 * Serves HBONE on sockets handed to `accept`. It never listens itself: the ztunnel owns the listener and
 * knows each connection's real destination (SO_ORIGINAL_DST, or the local address without capture).
 */
export class HboneServer {
  private readonly options: HboneServerOptions;
  private readonly contexts: ContextCache;
  private readonly flow: FlowControl;
  private readonly maxStreams: number;
  private readonly handshakeTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** The certificate each session's client presented, to cut the session when it is revoked. */
  private readonly peerLeaves = new Map<http2.ServerHttp2Session, X509Certificate>();
  /** TLS sockets still in the handshake (no session yet). */
  private readonly handshaking = new Set<tls.TLSSocket>();
  private closing = false;
  private streamCount = 0;

  constructor(options: HboneServerOptions) {
    if (typeof options?.certFor !== 'function' || typeof options.onConnect !== 'function') {
      throw new AmbitError(
        HBONE_ERRORS.BAD_OPTIONS,
        'HboneServer needs the functions "certFor" and "onConnect"',
      );
    }
    this.options = options;
    this.contexts = new ContextCache(options.maxContexts);
    this.flow = flowControlOptions('HboneServer', options.flowControl);
    this.maxStreams = intOption(
      'HboneServer',
      'maxConcurrentStreams',
      options.maxConcurrentStreams ?? DEFAULT_MAX_STREAMS,
      1,
      2 ** 31 - 1,
    );
    this.handshakeTimeoutMs = intOption(
      'HboneServer',
      'handshakeTimeoutMs',
      options.handshakeTimeoutMs ?? 10_000,
      1,
      2 ** 31 - 1,
    );
    this.pingIntervalMs = intOption(
      'HboneServer',
      'pingIntervalMs',
      options.pingIntervalMs ?? 10_000,
      1,
      2 ** 31 - 1,
    );
    this.pingTimeoutMs = intOption(
      'HboneServer',
      'pingTimeoutMs',
      options.pingTimeoutMs ?? 20_000,
      1,
      2 ** 31 - 1,
    );
  }

  /**
   * Forgets the TLS contexts of identities `holds` says are gone (call it when the node's certificates
   * change); sessions already up keep theirs until they close.
   */
  retainIdentities(holds: (identity: SpiffeId) => boolean): void {
    this.contexts.retain(holds);
  }

  /** Open HTTP/2 sessions and CONNECT streams, for the admin endpoint. */
  stats(): { sessions: number; streams: number } {
    return { sessions: this.sessions.size, streams: this.streamCount };
  }

  /**
   * Takes over an accepted TCP socket that was sent to `destinationAddress`. `handshakeDone` is called once
   * its TLS handshake succeeded (the caller counts handshakes in progress; it also hears the socket close).
   */
  accept(socket: net.Socket, destinationAddress: string, handshakeDone?: () => void): void {
    const destination = canonicalIp(destinationAddress);
    const peerAddress =
      socket.remoteAddress !== undefined && socket.remotePort !== undefined
        ? { address: canonicalIp(socket.remoteAddress) ?? socket.remoteAddress, port: socket.remotePort }
        : undefined;
    const where = { destination: destinationAddress, peer: peerAddress && formatAuthority(peerAddress) };
    if (this.closing || destination === undefined) {
      if (destination === undefined)
        log.warn(where, 'HBONE connection with a destination that is not an IP; closing');
      socket.destroy();
      return;
    }
    let material: TlsMaterial | undefined;
    let context: tls.SecureContext;
    let bundle: TrustBundle;
    try {
      material = this.options.certFor(destination);
      if (material === undefined) {
        log.debug(where, 'no certificate for this HBONE destination; closing');
        socket.destroy();
        return;
      }
      ({ context, bundle } = this.contexts.get(material));
    } catch (err) {
      log.warn({ ...where, err }, 'cannot serve HBONE for this destination; closing');
      socket.destroy();
      return;
    }
    const trustDomain = trustDomainOf(material.identity);
    // Not half-open, whatever the listener was made with: the TLS socket (and so the HTTP/2 session)
    // inherits this, and a half-open one never closes on the peer's FIN, so a dead source's streams,
    // their upstream connections and their buffers would stay for ever. HBONE carries half-close as
    // END_STREAM per stream; a FIN on the connection means the peer is gone.
    socket.allowHalfOpen = false;
    // Istio's ztunnel keepalive idle time; Node probes every 1 s after it, 10 times.
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));

    const tlsSocket = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: context,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ALPN,
    });
    const timer = setTimeout(() => {
      log.debug(where, `HBONE TLS handshake not done within ${this.handshakeTimeoutMs} ms; closing`);
      tlsSocket.destroy();
    }, this.handshakeTimeoutMs);
    this.handshaking.add(tlsSocket);
    tlsSocket.once('close', () => {
      clearTimeout(timer);
      this.handshaking.delete(tlsSocket);
    });
    tlsSocket.on('error', (err) => log.debug({ ...where, err }, 'HBONE TLS error'));
    tlsSocket.once('secure', () => {
      clearTimeout(timer);
      this.handshaking.delete(tlsSocket);
      handshakeDone?.();
      if (tlsSocket.alpnProtocol !== 'h2') {
        log.debug({ ...where, alpn: tlsSocket.alpnProtocol }, 'HBONE client did not negotiate h2; closing');
        tlsSocket.destroy();
        return;
      }
      let peerIdentity: SpiffeId;
      let peerLeaf: X509Certificate;
      try {
        // The server side's peer check: the chain, the trust domain and revocation, and a workload (never a
        // node or control-plane credential); policy decides the rest.
        ({ id: peerIdentity, leaf: peerLeaf } = verifyPeer(peerChain(tlsSocket), bundle, {
          trustDomain,
          workload: true,
          revoked: this.options.revoked?.(),
        }));
      } catch (err) {
        log.info({ ...where, err }, 'HBONE client certificate refused');
        tlsSocket.destroy();
        return;
      }
      if (this.closing) {
        tlsSocket.destroy();
        return;
      }
      this.startSession(tlsSocket, destination, peerIdentity, peerLeaf, peerAddress);
    });
  }

  private startSession(
    tlsSocket: tls.TLSSocket,
    destinationAddress: string,
    peerIdentity: SpiffeId,
    peerLeaf: X509Certificate,
    peerAddress: SocketAddr | undefined,
  ): void {
    // Node quirk: tls.Server clears `secureConnecting` before emitting 'secureConnection'; a bare server-side
    // TLSSocket never does, and an HTTP/2 session over it would wait forever for a 'secureConnect' that a
    // server socket never emits.
    (tlsSocket as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    const session = http2.performServerHandshake(tlsSocket, {
      settings: h2Settings(this.flow, this.maxStreams),
      maxSessionMemory: sessionMemoryMb(this.flow),
    });
    this.sessions.add(session);
    PROCESS_WINDOW_BUDGET.track(session, this.flow.streamWindowBytes);
    this.peerLeaves.set(session, peerLeaf);
    session.once('close', () => {
      this.sessions.delete(session);
      this.peerLeaves.delete(session);
    });
    session.on('error', (err) => log.debug({ destinationAddress, peerIdentity, err }, 'HBONE session error'));
    session.once('connect', () => session.setLocalWindowSize(this.flow.connectionWindowBytes));
    this.keepalive(session, { destinationAddress, peerIdentity });
    session.on('stream', (stream, headers) => {
      if (this.closing) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      if (this.options.revoked?.().has(peerLeaf)) {
        log.info(
          { destinationAddress, peerIdentity },
          'HBONE client certificate revoked; closing its session',
        );
        session.destroy();
        return;
      }
      this.streamCount += 1;
      PROCESS_WINDOW_BUDGET.opened(session);
      stream.once('close', () => {
        this.streamCount -= 1;
        PROCESS_WINDOW_BUDGET.closed(session);
      });
      this.serveStream(stream, headers, destinationAddress, peerIdentity, peerAddress).catch((err) => {
        log.error({ err }, 'HBONE stream handler failed');
        stream.destroy();
      });
    });
  }

  /**
   * PINGs the client while the session lives; an answer that does not come back in time destroys the
   * session, which resets its streams and so their upstream connections (splice passes the reset on).
   */
  private keepalive(session: http2.ServerHttp2Session, where: Record<string, unknown>): void {
    let deadline: NodeJS.Timeout | undefined;
    const interval = setInterval(() => {
      if (deadline !== undefined || session.destroyed) return;
      deadline = setTimeout(() => {
        log.info(where, `HBONE client did not answer PING within ${this.pingTimeoutMs} ms; closing`);
        session.destroy();
      }, this.pingTimeoutMs);
      deadline.unref();
      const sent = session.ping((err) => {
        clearTimeout(deadline);
        deadline = undefined;
        if (err !== null) log.debug({ ...where, err }, 'HBONE PING failed');
      });
      // Too many PINGs in flight (never with one at a time) or a session already closing.
      if (!sent) {
        clearTimeout(deadline);
        deadline = undefined;
      }
    }, this.pingIntervalMs);
    interval.unref();
    session.once('close', () => {
      clearInterval(interval);
      clearTimeout(deadline);
    });
  }

  private async serveStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    destinationAddress: string,
    peerIdentity: SpiffeId,
    peerAddress: SocketAddr | undefined,
  ): Promise<void> {
    const started = performance.now();
    stream.on('error', (err) => log.debug({ err }, 'HBONE stream error'));
    const record = (status: number, rest: Partial<StreamRecord>) =>
      this.options.onComplete?.({
        destinationAddress,
        peerIdentity,
        peerAddress,
        status,
        received: 0,
        sent: 0,
        durationMs: performance.now() - started,
        headers,
        ...rest,
      });
    const refuse = (status: number, reason: string, authority?: string, flags?: string) => {
      if (!stream.destroyed && !stream.headersSent)
        stream.respond({ ':status': status }, { endStream: true });
      record(status, {
        reason,
        ...(authority === undefined ? {} : { authority }),
        ...(flags === undefined ? {} : { flags }),
      });
    };

    if (headers[':method'] !== 'CONNECT') {
      refuse(400, `method ${headers[':method']} is not CONNECT`);
      return;
    }
    let authority: SocketAddr;
    try {
      authority = parseAuthority(headers[':authority']);
    } catch (err) {
      refuse(400, (err as Error).message);
      return;
    }
    const authorityText = formatAuthority(authority);
    let decision: ConnectDecision;
    try {
      decision = await this.options.onConnect({
        authority,
        destinationAddress,
        peerIdentity,
        peerAddress,
        headers,
        stream,
      });
    } catch (err) {
      log.warn({ err, authority: authorityText }, 'HBONE onConnect failed; answering 503');
      decision = { status: 503, reason: `the connect handler failed: ${(err as Error).message}` };
    }
    if (decision.status !== 200) {
      refuse(decision.status, decision.reason, authorityText, decision.flags);
      return;
    }
    const upstream = 'take' in decision ? undefined : decision.upstream;
    if (!('take' in decision) && (upstream === undefined || typeof upstream.pipe !== 'function')) {
      log.error(
        { authority: authorityText },
        'HBONE onConnect answered 200 without an upstream socket; answering 503',
      );
      refuse(503, 'the connect handler gave no upstream socket', authorityText);
      return;
    }
    if (stream.destroyed) {
      // The client gave up while we were dialling. A stream the component would have taken is its to
      // account for, and it never had it: nothing is recorded.
      upstream?.destroy();
      if ('take' in decision) return;
      record(200, {
        authority: authorityText,
        error: new Error('the client reset the stream before the answer'),
      });
      return;
    }
    stream.respond({
      ':status': 200,
      ...(decision.baggage === undefined ? {} : { baggage: decision.baggage }),
    });
    // The component serves the stream itself (the waypoint), or it is spliced to the upstream socket.
    if ('take' in decision) {
      decision.take(stream);
      return;
    }
    splice(stream, decision.upstream, (result) => record(200, { authority: authorityText, ...result }));
  }

  /**
   * Cuts every session whose client presented a certificate that is now revoked, with the streams it
   * carries (call it when the revocation list changes). Returns how many sessions were cut.
   */
  closeRevoked(): number {
    const revoked = this.options.revoked?.();
    if (!revoked?.size) return 0;
    let cut = 0;
    for (const [session, leaf] of this.peerLeaves) {
      if (!revoked.has(leaf)) continue;
      log.info({ serial: leaf.serialNumber }, 'HBONE client certificate revoked; closing its session');
      session.destroy();
      cut++;
    }
    return cut;
  }

  /**
   * Stops taking connections and streams (GOAWAY), lets open streams finish for up to `graceMs`, then
   * destroys what is left. Resolves when every session and socket is closed.
   */
  async close(graceMs = 0): Promise<void> {
    this.closing = true;
    for (const s of this.sessions) s.close();
    // Sockets still in the TLS handshake have nothing to finish.
    for (const t of this.handshaking) t.destroy();
    const allClosed = () =>
      Promise.all([
        ...[...this.sessions].map(
          (s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r()))),
        ),
        ...[...this.sockets].map(
          (s) => new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r()))),
        ),
      ]);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((r) => {
      timer = setTimeout(() => r('deadline'), graceMs);
    });
    const outcome = await Promise.race([allClosed(), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      for (const s of this.sessions) s.destroy();
      for (const sock of this.sockets) sock.destroy();
      await allClosed();
    }
  }
}
