// How a ztunnel is configured: its ports and their defaults, its options (the `ambit ztunnel` flags),
// and the inputs it is built from (pool, HBONE server, config client, certificates), which a caller may
// pass in instead of the defaults.

import type * as grpc from '@grpc/grpc-js';
import { PORTS } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { HbonePool, type HbonePoolOptions, HboneServer, type HboneServerOptions } from '../hbone/index.ts';
import { CertificateManager, type CertificateSource } from '../identity/index.ts';
import { XdsClient } from '../xds/index.ts';
import { ZTUNNEL_ERRORS } from './errors.ts';
import type { L7Hooks, L7Parts } from './l7-hooks.ts';
import type { ConnectionLimits } from './limits.ts';

export const ZTUNNEL_DEFAULT_PORTS = {
  outbound: PORTS.outbound,
  inboundPlaintext: PORTS.inboundPlaintext,
  hbone: PORTS.hbone,
  socks5: PORTS.socks5,
  metrics: PORTS.metrics,
  readiness: PORTS.readiness,
  admin: PORTS.admin,
  dns: PORTS.dns,
} as const;

export type ZtunnelPorts = { -readonly [K in keyof typeof ZTUNNEL_DEFAULT_PORTS]: number };

/**
 * What a ztunnel is built from. Each is made from the wiring the ztunnel gives it (its callbacks into the
 * ztunnel's state and paths); the defaults construct the real ones, a test may pass its own.
 */
export interface ZtunnelInputs {
  pool: (wiring: HbonePoolOptions) => HbonePool;
  hbone: (wiring: HboneServerOptions) => HboneServer;
  xds: (wiring: ConstructorParameters<typeof XdsClient>[0]) => ConfigFeed;
  certs: (wiring: ConstructorParameters<typeof CertificateManager>[0]) => CertificateManager;
}

/** What the ztunnel needs of its config stream: the control plane's (`XdsClient`), or the main thread's relay. */
export interface ConfigFeed {
  start(): void;
  whenSynced(): Promise<void>;
  stop(): void;
  readonly connected: boolean;
  readonly peer: string | undefined;
  readonly lastError: string | undefined;
  versions(): Record<string, Record<string, string>>;
}

/** Where a ztunnel's configuration comes from: the control plane. */
export interface ControlLink {
  target: string;
  credentials: () => grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
}

/**
 * A worker thread's ztunnel (`threads.ts`): its configuration and certificates come from the main thread,
 * it listens on the main thread's ports beside it and serves no endpoints of its own.
 */
export interface ThreadLink {
  /** 1, 2, … (the main thread is 0). */
  thread: number;
  feed: (wiring: Pick<ConstructorParameters<typeof XdsClient>[0], 'types' | 'apply'>) => ConfigFeed;
}

export const DEFAULT_INPUTS: ZtunnelInputs = {
  pool: (wiring) => new HbonePool(wiring),
  hbone: (wiring) => new HboneServer(wiring),
  xds: (wiring) => new XdsClient(wiring),
  certs: (wiring) => new CertificateManager(wiring),
};

export interface ZtunnelOptions {
  node: string;
  /**
   * Sidecar mode: the uid of the one workload whose traffic this proxy carries, from inside that
   * workload's pod (its own in-pod capture sends it here). Undefined: the node's ztunnel, which carries
   * every enrolled ambient workload on the node.
   */
  workload?: string;
  /** A sidecar's name to the control plane, `<pod>.<namespace>` (with `workload`). */
  sidecarName?: string;
  /** A sidecar's L7 (src/sidecar), built from the ztunnel's parts: it takes the connections it serves as HTTP. */
  l7?: (parts: L7Parts) => L7Hooks;
  /**
   * `redirect`: the node's nftables rules send traffic here; one listener per port on `bindAddress`,
   * destinations from SO_ORIGINAL_DST. `none`: no kernel capture (tests, hosts without it): clients
   * come through SOCKS5, and the HBONE listener binds each local workload's own address.
   */
  capture: 'redirect' | 'none';
  /** Where the node-wide listeners bind (default 0.0.0.0). */
  bindAddress?: string;
  /**
   * SOCKS5 (explicit capture) is opt-in: the address to listen on. Default: on `bindAddress` when
   * capture is `none` (it is then the way in), off with kernel capture.
   */
  socks5?: string;
  ports?: Partial<ZtunnelPorts>;
  /** This node's own addresses at start (keep them current with `setNodeAddresses`). */
  nodeAddresses: string[];
  /**
   * The admin (config, certificates, connections) on this Unix socket: 0600 in a 0700 directory, peers
   * other than root and this process's user cut off (the CLI reads it from the host namespace).
   */
  adminSocket?: string;
  /** The admin on loopback TCP too (`127.0.0.1` or `127.0.0.1:15000`); off by default. */
  adminListen?: string;
  /**
   * Who may scrape 15020 besides the node itself (loopback and the node's own addresses): CIDRs, for
   * Prometheus. Pods never may (readiness on 15021 stays open to all).
   */
  metricsAllow?: string[];
  control: ControlLink | ThreadLink;
  certificates: CertificateSource;
  /**
   * Threads that carry traffic (default 1: the main thread alone). With more, each worker thread listens
   * on the same ports (SO_REUSEPORT: the kernel spreads new connections over the threads) with its own
   * HBONE pool, connection table and share of each connection limit; the main thread keeps the config
   * stream, the certificates' source, the DNS proxy and the endpoints, and relays to them.
   */
  workerThreads?: number;
  /** Bounded: the most connections each listener accepts at once. */
  maxConnections?: number;
  /** Caps on connections and handshakes (defaults derived from the descriptor limit: `limits.ts`). */
  limits?: Partial<ConnectionLimits>;
  connectTimeoutMs?: number;
  /**
   * A proxied connection with no byte either way for this long is cut (default 1 h, the TCP idle timeout
   * of Envoy and so of Istio's sidecars and waypoints; 0 turns it off). TCP keepalive (180 s, as Istio's
   * ztunnel) finds dead peers; this ends live ones that stopped talking.
   */
  idleTimeoutMs?: number;
  /**
   * The DNS proxy on `ports.dns` (UDP and TCP, on `bindAddress`): answers the mesh's service names and
   * forwards the rest to `upstreams` (none: other names are REFUSED). Off when undefined.
   */
  dns?: {
    upstreams: ReadonlyArray<{ host: string; port: number }>;
    /**
     * Where it binds instead of `bindAddress`: a sidecar's is 127.0.0.1, where its in-pod rules redirect
     * the pod's own queries, so that the answer leaves from the address the redirect mapped to.
     */
    host?: string;
  };
  /** On stop: how long open connections may finish before they are cut. */
  drainMs?: number;
  /** The inputs to build from instead of the defaults (`DEFAULT_INPUTS`). */
  inputs?: Partial<ZtunnelInputs>;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_DRAIN_MS = 5_000;
export const DEFAULT_MAX_CONNECTIONS_PER_LISTENER = 65_536;

/** The most threads `workerThreads` may ask for. */
export const MAX_WORKER_THREADS = 64;

/**
 * The worker-threads option: a whole number from 1 to MAX_WORKER_THREADS (a flag's text too); anything
 * else refuses the start, naming `what` was given.
 */
export function workerThreadsOption(value: number | string | undefined, what = 'the worker threads'): number {
  const n = typeof value === 'string' ? (/^\d{1,3}$/.test(value) ? Number(value) : Number.NaN) : (value ?? 1);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKER_THREADS) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_WORKER_THREADS,
      `${what} must be a whole number from 1 to ${MAX_WORKER_THREADS}, got ${typeof value === 'string' ? JSON.stringify(value) : value}`,
    );
  }
  return n;
}

/** The idle timeout option: whole milliseconds, 0 for none; anything else refuses the start. */
export function idleTimeoutOption(value: number | undefined): number {
  const ms = value ?? DEFAULT_IDLE_TIMEOUT_MS;
  if (!Number.isInteger(ms) || ms < 0 || ms > 2 ** 31 - 1) {
    throw new AmbitError(
      ZTUNNEL_ERRORS.BAD_IDLE_TIMEOUT,
      `the idle timeout must be a whole number of milliseconds from 0 (off) to ${2 ** 31 - 1}, got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}
