// The control plane's gRPC server on 15010: TLS with a serving certificate from the CA; a client certificate
// is requested (node credentials) but not required (Join has none). Services register before start().

import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { PORTS } from '../../config/index.ts';
import { AmbitError } from '../../errors/index.ts';
import { type SpiffeId, spiffeIdOf } from '../../identity/index.ts';
import { logger } from '../../log/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { MutableCertificateProvider, type TlsMaterial } from './credentials.ts';

const log = logger('control-grpc');

export const DEFAULT_GRPC_PORT = PORTS.controlGrpc;

export interface ControlGrpcServerOptions {
  host?: string;
  /** 15010 by default; tests pass 0 for any free port. */
  port?: number;
  tls: TlsMaterial;
  /** Extra grpc-js server options (message sizes, keepalive). */
  serverOptions?: grpc.ServerOptions;
  /** A connection must finish its TLS handshake within this (default 10 s; Node's own default is 120 s). */
  handshakeTimeoutMs?: number;
  /** Concurrent streams one HTTP/2 connection may open (default 100, announced in SETTINGS). */
  maxConcurrentStreams?: number;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;

export class ControlGrpcServer {
  private readonly server: grpc.Server;
  private readonly provider: MutableCertificateProvider;
  private readonly host: string;
  private readonly port: number;
  private readonly services: string[] = [];
  private readonly handshakeTimeoutMs: number;
  private boundPort: number | undefined;

  constructor(options: ControlGrpcServerOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? DEFAULT_GRPC_PORT;
    this.provider = new MutableCertificateProvider(options.tls);
    this.handshakeTimeoutMs = positiveInt(
      'handshakeTimeoutMs',
      options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    this.server = new grpc.Server({
      ...options.serverOptions,
      // Bounds what one connection can hold open: a caller that opens streams without end gets queued by
      // its own HTTP/2 stack instead of costing the control plane memory per stream.
      'grpc.max_concurrent_streams': positiveInt(
        'maxConcurrentStreams',
        options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
      ),
    });
  }

  /** Registers a service (the CA's now; the config stream's later). Only before start(). */
  addService(
    name: string,
    definition: grpc.ServiceDefinition,
    implementation: grpc.UntypedServiceImplementation,
  ): void {
    if (this.boundPort !== undefined) {
      throw new AmbitError(
        CONTROL_ERRORS.GRPC_STARTED,
        `cannot add service ${name}: the gRPC server is already listening`,
      );
    }
    this.server.addService(definition, implementation);
    this.services.push(name);
  }

  /** Binds and starts serving; resolves to the bound address. */
  async start(): Promise<{ host: string; port: number }> {
    // grpc-js names this function's parameters (ca, identity) but passes them on as (identity, ca); one
    // provider serves both, so the order cannot matter.
    const creds = grpc.experimental.createCertificateProviderServerCredentials(
      this.provider,
      this.provider,
      false,
    );
    withHandshakeTimeout(creds, this.handshakeTimeoutMs);
    const target = this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(target, creds, (err, port) => {
        if (err) {
          reject(
            new AmbitError(
              CONTROL_ERRORS.GRPC_BIND,
              `cannot listen on ${target}: ${err.message}; is another control plane running?`,
              {
                cause: err,
              },
            ),
          );
        } else resolve(port);
      });
    });
    log.info({ address: `${this.host}:${this.boundPort}`, services: this.services }, 'gRPC server listening');
    return { host: this.host, port: this.boundPort };
  }

  get address(): string {
    if (this.boundPort === undefined)
      throw new AmbitError(CONTROL_ERRORS.GRPC_NOT_STARTED, 'the gRPC server is not listening');
    return this.host.includes(':') ? `[${this.host}]:${this.boundPort}` : `${this.host}:${this.boundPort}`;
  }

  /** New serving certificate or trust bundle (root rotation) without a restart; new handshakes use it. */
  updateTls(material: Partial<TlsMaterial>): void {
    this.provider.update(material);
  }

  /** Drains calls for up to `graceMs`, then closes what is left. */
  async stop(graceMs = 5000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * grpc-js has no option for the TLS handshake deadline, and Node's tls.Server keeps a connection that never
 * finishes its handshake for 120 s. grpc-js hands the credentials' constructor options to
 * http2.createSecureServer as they are, so the deadline goes in there (`handshakeTimeout`).
 */
function withHandshakeTimeout(creds: grpc.ServerCredentials, ms: number): void {
  const options = (
    creds as unknown as { _getConstructorOptions?: () => { handshakeTimeout?: number } | null }
  )._getConstructorOptions?.();
  if (options === null || typeof options !== 'object') {
    throw new AmbitError(
      CONTROL_ERRORS.GRPC_TLS_OPTIONS,
      'this grpc-js version hides its TLS server options: the handshake timeout cannot be set; pin @grpc/grpc-js 1.14',
    );
  }
  options.handshakeTimeout = ms;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    throw new AmbitError(
      CONTROL_ERRORS.GRPC_BAD_OPTION,
      `gRPC server option ${name} must be a positive whole number, got ${value}`,
    );
  }
  return value;
}

/**
 * The SPIFFE ID of the caller's client certificate, when it presented one that chained to the server's trust
 * bundle (TLS verified it); undefined otherwise.
 */
export function callerIdentity(call: {
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null;
}): SpiffeId | undefined {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (raw === undefined) return undefined;
  try {
    return spiffeIdOf(new X509Certificate(raw));
  } catch {
    return undefined;
  }
}
