// The proxy's side of the config stream: subscribe to types, apply each delta through the proxy's
// one state mutator, ACK what applied and NACK what did not (the proxy keeps its last good state),
// and reconnect with capped backoff, telling the control plane what it already holds.

import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { logger } from '../log/index.ts';
import { ConfigStreamClient } from './proto.ts';
import type { TypeUrl } from './snapshot.ts';
import { controlTarget } from './target.ts';
import type { DeltaRequest, DeltaResponse, XdsNode } from './types.ts';

const log = logger('xds-client');

export interface Delta {
  upserts: Array<{ name: string; value: unknown }>;
  removed: string[];
}

export interface XdsClientOptions {
  /** `host:port` of the control plane's gRPC port, or several replicas' (see target.ts). */
  target: string;
  /** Called on every (re)connect, so renewed certificates are used. */
  credentials: () => grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  node: XdsNode;
  types: readonly TypeUrl[];
  /** Applies one delta; throwing rejects it (NACK) and must leave the proxy's state unchanged. */
  apply: (type: TypeUrl, delta: Delta) => void;
  backoff?: { initialMs: number; maxMs: number };
}

export class XdsClient extends EventEmitter {
  private readonly opts: XdsClientOptions;
  /** Per type, what this proxy holds: name → version. Sent on reconnect so only changes come back. */
  private readonly held = new Map<TypeUrl, Map<string, string>>();
  private readonly synced = new Set<TypeUrl>();
  private client: grpc.Client | undefined;
  private call: grpc.ClientDuplexStream<DeltaRequest, DeltaResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private stopped = false;
  connected = false;
  lastError: string | undefined;
  /** The control-plane replica the stream is on (its address), while connected. */
  peer: string | undefined;

  constructor(opts: XdsClientOptions) {
    super();
    controlTarget(opts.target); // a bad target is refused here, not on a reconnect timer
    this.opts = opts;
    this.delay = opts.backoff?.initialMs ?? 200;
    for (const t of opts.types) this.held.set(t, new Map());
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Resolves once every type has been synced at least once. */
  whenSynced(): Promise<void> {
    if (this.synced.size === this.opts.types.length) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.synced.size === this.opts.types.length) {
          this.off('synced', check);
          resolve();
        }
      };
      this.on('synced', check);
    });
  }

  /** Versions held per type, for the proxy's config dump. */
  versions(): Record<string, Record<string, string>> {
    return Object.fromEntries([...this.held].map(([t, m]) => [t, Object.fromEntries(m)]));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.call?.cancel();
    this.client?.close();
    this.call = undefined;
    this.client = undefined;
  }

  private connect(): void {
    if (this.stopped) return;
    const client = new ConfigStreamClient(
      controlTarget(this.opts.target),
      this.opts.credentials(),
      this.opts.channelOptions,
    );
    this.client = client;
    const call = (
      client as unknown as { delta(): grpc.ClientDuplexStream<DeltaRequest, DeltaResponse> }
    ).delta();
    this.call = call;
    let first = true;
    for (const typeUrl of this.opts.types) {
      call.write({
        node: first ? this.opts.node : null,
        typeUrl,
        initialResourceVersions: Object.fromEntries(this.held.get(typeUrl) ?? []),
      });
      first = false;
    }
    call.on('data', (res: DeltaResponse) => this.onResponse(call, res));
    call.on('error', (err: grpc.ServiceError) => {
      this.lastError = err.details || err.message;
    });
    // 'status' marks the end of the call from either side; 'close' waits for our half too.
    call.on('status', () => this.onClosed(call, client));
  }

  private onResponse(call: grpc.ClientDuplexStream<DeltaRequest, DeltaResponse>, res: DeltaResponse): void {
    if (!this.connected) {
      this.connected = true;
      this.delay = this.opts.backoff?.initialMs ?? 200;
      this.peer = call.getPeer();
      log.info({ peer: this.peer }, 'config stream connected');
      this.emit('connected');
    }
    const type = res.typeUrl;
    const held = this.held.get(type);
    if (!held) {
      call.write({ typeUrl: type, responseNonce: res.nonce, errorDetail: `type ${type} was not subscribed` });
      return;
    }
    let delta: Delta;
    try {
      delta = {
        upserts: res.resources.map((r) => ({
          name: r.name,
          value: JSON.parse(r.body.toString('utf8')) as unknown,
        })),
        removed: res.removedResources,
      };
      this.opts.apply(type, delta);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      log.warn(
        { type, version: res.systemVersionInfo, error },
        'rejected a config update (NACK); keeping the last good state',
      );
      call.write({ typeUrl: type, responseNonce: res.nonce, errorDetail: error });
      this.emit('nack', type, error);
      return;
    }
    for (const r of res.resources) held.set(r.name, r.version);
    for (const name of res.removedResources) held.delete(name);
    call.write({ typeUrl: type, responseNonce: res.nonce });
    if (!this.synced.has(type)) {
      this.synced.add(type);
      this.emit('synced', type);
    }
    this.emit('update', type, res.systemVersionInfo);
  }

  private onClosed(call: grpc.ClientDuplexStream<DeltaRequest, DeltaResponse>, client: grpc.Client): void {
    if (call !== this.call) return;
    client.close();
    const wasConnected = this.connected;
    this.connected = false;
    this.peer = undefined;
    if (wasConnected) this.emit('disconnected', this.lastError);
    if (this.stopped) return;
    log.info(
      { retryInMs: this.delay, error: this.lastError },
      'config stream closed; keeping the last good state and reconnecting',
    );
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, this.opts.backoff?.maxMs ?? 15_000);
  }
}
