// One client HBONE connection: TCP to the destination's HBONE port, TLS 1.3 with our identity and no SNI,
// the server's identity checked against the accepted list, then an HTTP/2 session carrying CONNECT streams.

import type { X509Certificate } from 'node:crypto';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import { type RevocationList, type SpiffeId, type TrustBundle, verifyPeer } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import { formatAuthority, type SocketAddr } from './authority.ts';
import { connectError, HBONE_ERRORS, identityError } from './errors.ts';
import { ALPN, peerChain } from './material.ts';
import {
  type FlowControl,
  h2Settings,
  PROCESS_WINDOW_BUDGET,
  sessionMemoryMb,
  TCP_KEEPALIVE_MS,
} from './settings.ts';

const log = logger('hbone');

// OpenSSL's certificate verification failures, as Node reports them in err.code: the server's chain does not
// lead to our bundle, so this is an identity failure rather than a transport one.
const VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

export interface ConnectionTimers {
  connectTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  idleTimeoutMs: number;
  /** An idle connection while another to the same peer is open closes after this (≤ idleTimeoutMs). */
  spareIdleTimeoutMs: number;
}

export interface ConnectionOptions {
  id: number;
  key: string;
  destination: SocketAddr;
  source: SpiffeId;
  context: tls.SecureContext;
  bundle: TrustBundle;
  accepted: readonly SpiffeId[];
  /** Certificates refused although they chain to the bundle. */
  revoked?: RevocationList;
  maxStreams: number;
  flow: FlowControl;
  timers: ConnectionTimers;
  /** Called once when the connection is gone (closed, failed, idled out), so the pool can forget it. */
  onGone: (conn: HboneConnection) => void;
  /** Whether another connection of the same pool key (source, accepted identities, destination) has room. */
  hasSibling?: (conn: HboneConnection) => boolean;
  /** Told when this connection closes for being idle. */
  onIdleClose?: () => void;
}

export type ConnectionState = 'connecting' | 'ready' | 'draining' | 'closed';

/** One pooled connection, as the pool's stats (and the ztunnel's /connections) show it. */
export interface ConnectionStats {
  id: number;
  state: ConnectionState;
  streams: number;
  maxStreams: number;
  opened: number;
  peerIdentity?: SpiffeId;
  idleSince?: string;
}

export class HboneConnection {
  readonly id: number;
  readonly key: string;
  readonly destination: SocketAddr;
  readonly source: SpiffeId;
  /** Resolves when the session is up and the server's SETTINGS are in; rejects with a coded error. */
  readonly ready: Promise<void>;
  state: ConnectionState = 'connecting';
  peerIdentity: SpiffeId | undefined;
  /** The certificate the server presented, to cut the connection when it is revoked. */
  peerLeaf: X509Certificate | undefined;
  /** Open CONNECT streams. */
  active = 0;
  /** Callers waiting for this connection to come up; each will open one stream. */
  waiting = 0;
  /** Streams opened over the connection's life. */
  opened = 0;
  idleSince: number | undefined;
  private readonly localMax: number;
  private remoteMax = Number.POSITIVE_INFINITY;
  private readonly session: http2.ClientHttp2Session;
  private readonly socket: tls.TLSSocket;
  private readonly options: ConnectionOptions;
  private idleTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingDeadline: NodeJS.Timeout | undefined;
  private gone = false;
  private closedLocally = false;
  private readonly goneListeners: Array<() => void> = [];

  constructor(options: ConnectionOptions) {
    this.options = options;
    this.id = options.id;
    this.key = options.key;
    this.destination = options.destination;
    this.source = options.source;
    this.localMax = options.maxStreams;
    const server = formatAuthority(options.destination);
    let identityFailure: Error | undefined;
    const socket = tls.connect({
      host: options.destination.address,
      port: options.destination.port,
      secureContext: options.context,
      ALPNProtocols: ALPN,
      rejectUnauthorized: true,
      // No SNI: the server picks its certificate by the address we dialled, not by name.
      servername: '',
      // Replaces the host-name check: the URI SAN must be an accepted SPIFFE ID and the chain ours.
      checkServerIdentity: () => {
        try {
          const verified = verifyPeer(peerChain(socket), options.bundle, {
            identities: options.accepted,
            workload: true,
            revoked: options.revoked,
          });
          this.peerIdentity = verified.id;
          this.peerLeaf = verified.leaf;
          return undefined;
        } catch (err) {
          identityFailure = identityError(server, (err as Error).message, err);
          return identityFailure;
        }
      },
    });
    this.socket = socket;
    // A server that vanished without a FIN is noticed by PING first; TCP keepalive is the floor under it.
    socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
    // Small frames (HEADERS, WINDOW_UPDATE, a short request) go out at once: waiting for an ACK the peer
    // delays (Nagle) would add tens of milliseconds to request/response exchanges over the tunnel.
    socket.setNoDelay(true);
    const session = http2.connect(`https://${server}`, {
      createConnection: () => socket,
      settings: h2Settings(options.flow),
      maxSessionMemory: sessionMemoryMb(options.flow),
    });
    this.session = session;
    // What the server may send before the client reads it is bounded like the server side's: a stalled
    // local reader holds at most its share of the session's and the process's budget, not 4 MiB a stream.
    PROCESS_WINDOW_BUDGET.track(session, options.flow.streamWindowBytes);
    // Registered before the readiness listener so the limit is known when waiters wake up.
    session.on('remoteSettings', (settings) => {
      this.remoteMax = settings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
    });

    this.ready = new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err === undefined) {
          this.state = 'ready';
          this.startKeepalive();
          this.checkIdle();
          resolve();
        } else {
          this.destroy();
          reject(err);
        }
      };
      const timer = setTimeout(
        () =>
          settle(
            connectError(
              server,
              options.destination.port,
              `no answer within ${options.timers.connectTimeoutMs} ms`,
            ),
          ),
        options.timers.connectTimeoutMs,
      );
      const classify = (err: Error): Error => {
        if (identityFailure !== undefined) return identityFailure;
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (VERIFY_CODES.has(code)) {
          return identityError(
            server,
            `its certificate chain does not verify against the trust bundle (${code})`,
            err,
          );
        }
        return connectError(server, options.destination.port, err.message, err);
      };
      socket.once('error', (err) => settle(classify(err)));
      session.once('error', (err) => settle(classify(err)));
      socket.once('secureConnect', () => {
        if (socket.alpnProtocol !== 'h2') {
          settle(
            connectError(
              server,
              options.destination.port,
              `the server did not agree to ALPN h2 (got ${socket.alpnProtocol})`,
            ),
          );
        }
      });
      session.once('connect', () => {
        session.setLocalWindowSize(options.flow.connectionWindowBytes);
      });
      session.once('remoteSettings', () => settle());
      session.once('close', () =>
        settle(
          connectError(
            server,
            options.destination.port,
            this.closedLocally
              ? 'the pool closed the connection before it was ready'
              : 'the server closed the connection during the handshake (it may not trust this client certificate, or has no certificate for this address)',
          ),
        ),
      );
    });
    // The pool attaches its own rejection handler; this one only keeps an unobserved failure from crashing.
    this.ready.catch(() => {});

    session.on('goaway', () => {
      if (this.state !== 'closed') this.state = 'draining';
    });
    session.on('error', (err) => log.debug({ conn: this.id, server, err }, 'HBONE connection error'));
    session.on('close', () => this.markGone());
  }

  /** How many streams this connection may carry at once: ours, or fewer if the server says so. */
  get maxStreams(): number {
    return Math.min(this.localMax, this.remoteMax);
  }

  /** True when a new stream may be opened now (ready, not draining, below the stream limit). */
  hasCapacity(): boolean {
    return this.state === 'ready' && !this.session.destroyed && this.active < this.maxStreams;
  }

  /** True while connecting with room for one more waiter (assuming the local limit until SETTINGS arrive). */
  acceptsWaiter(): boolean {
    return this.state === 'connecting' && this.waiting < this.localMax;
  }

  /** Opens one CONNECT stream. The caller checked hasCapacity(). */
  open(authority: string, headers: Record<string, string>): http2.ClientHttp2Stream {
    const stream = this.session.request(
      { ...headers, ':method': 'CONNECT', ':authority': authority },
      { endStream: false },
    );
    this.active += 1;
    this.opened += 1;
    PROCESS_WINDOW_BUDGET.opened(this.session);
    this.clearIdle();
    stream.once('close', () => {
      this.active -= 1;
      PROCESS_WINDOW_BUDGET.closed(this.session);
      this.checkIdle();
    });
    return stream;
  }

  /** Calls `fn` once the connection is gone (at once if it already is). */
  whenGone(fn: () => void): void {
    if (this.gone) fn();
    else this.goneListeners.push(fn);
  }

  /** Stop taking streams; the session closes once its open streams finish. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.state === 'connecting') {
      this.destroy();
      return;
    }
    this.state = 'draining';
    this.stopTimers();
    if (!this.session.closed && !this.session.destroyed) this.session.close();
    else this.markGone();
  }

  destroy(err?: Error): void {
    this.closedLocally = true;
    this.stopTimers();
    this.state = 'closed';
    this.session.destroy(err);
    this.socket.destroy();
    this.markGone();
  }

  stats(): ConnectionStats {
    return {
      id: this.id,
      state: this.state,
      streams: this.active,
      maxStreams: Number.isFinite(this.maxStreams) ? this.maxStreams : this.localMax,
      opened: this.opened,
      ...(this.peerIdentity === undefined ? {} : { peerIdentity: this.peerIdentity }),
      ...(this.idleSince === undefined ? {} : { idleSince: new Date(this.idleSince).toISOString() }),
    };
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    this.state = 'closed';
    this.stopTimers();
    this.options.onGone(this);
    for (const fn of this.goneListeners.splice(0)) fn();
  }

  /**
   * An idle connection closes after the idle timeout (5 min, as Istio's ztunnel). One of several to the
   * same peer (what a burst opened: 100 streams each) closes sooner, after the spare idle timeout, so that
   * one stays warm and a burst's connections do not hold their memory for minutes.
   */
  private checkIdle(): void {
    if (this.active > 0 || this.state !== 'ready' || this.idleTimer !== undefined) return;
    this.idleSince = Date.now();
    const { idleTimeoutMs, spareIdleTimeoutMs } = this.options.timers;
    const spare = spareIdleTimeoutMs < idleTimeoutMs && this.options.hasSibling !== undefined;
    this.armIdle(spare ? spareIdleTimeoutMs : idleTimeoutMs, spare);
  }

  /** One timer, no closure per idle spell: `spare` says whether it is the spare check or the close. */
  private armIdle(ms: number, spare: boolean): void {
    this.idleTimer = setTimeout(this.idleDue, ms, spare);
    this.idleTimer.unref();
  }

  private readonly idleDue = (spare: boolean): void => {
    this.idleTimer = undefined;
    if (spare && !this.options.hasSibling?.(this)) {
      // The last one with room stays warm for the rest of the idle timeout.
      const { idleTimeoutMs, spareIdleTimeoutMs } = this.options.timers;
      this.armIdle(idleTimeoutMs - spareIdleTimeoutMs, false);
      return;
    }
    log.debug({ conn: this.id, key: this.key }, 'closing idle HBONE connection');
    this.close();
    this.options.onIdleClose?.();
  };

  private clearIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.idleSince = undefined;
  }

  private startKeepalive(): void {
    const { pingIntervalMs, pingTimeoutMs } = this.options.timers;
    this.pingTimer = setInterval(() => {
      if (this.pingDeadline !== undefined || this.session.destroyed) return;
      this.pingDeadline = setTimeout(() => {
        log.warn(
          { conn: this.id, key: this.key },
          `HBONE peer did not answer PING within ${pingTimeoutMs} ms; closing`,
        );
        this.destroy(
          Object.assign(new Error(`PING not answered within ${pingTimeoutMs} ms`), {
            code: HBONE_ERRORS.CONNECT,
          }),
        );
      }, pingTimeoutMs);
      this.pingDeadline.unref();
      this.session.ping((err) => {
        clearTimeout(this.pingDeadline);
        this.pingDeadline = undefined;
        if (err !== null) log.debug({ conn: this.id, err }, 'HBONE PING failed');
      });
    }, pingIntervalMs);
    this.pingTimer.unref();
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pingDeadline);
    this.clearIdle();
    this.pingTimer = undefined;
    this.pingDeadline = undefined;
  }
}
