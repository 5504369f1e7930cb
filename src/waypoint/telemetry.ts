// The waypoint's Telemetry: per destination (its Gateway, and each Service it serves) the tracing and
// access-log settings Istio's precedence gives, resolved once per configuration; and one request tracer
// per OpenTelemetry provider in use, created only when some Telemetry turns tracing on (the SDK is not
// even loaded otherwise) and shut down when no Telemetry uses its provider any more.

import { Gauge, type Registry } from 'prom-client';
import type { MeshConfigResource, TelemetryResource } from '../config/index.ts';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../log/index.ts';
import {
  type EffectiveTelemetry,
  loadTracing,
  type RequestSettings,
  type RequestTracer,
  resolveTelemetry,
  type TracerStats,
  type TracingProviderRef,
} from '../telemetry/index.ts';

/** The tracing a request gets: the tracer of its provider and the settings for it. */
export interface RequestTracing {
  tracer: RequestTracer;
  settings: RequestSettings;
}

export interface WaypointTelemetryOptions {
  log: Logger;
  /** The waypoint's namespace and this replica's name (its pod), for the spans' identity. */
  namespace: string;
  replica: string;
  /** Where a provider's `service:port` is reached (a mesh Service's endpoint, or the address itself). */
  resolve: (service: string, port: number) => { host: string; port: number } | undefined;
}

interface Held {
  /** By destination key: '' for the Gateway itself (traffic to a workload), else the Service key. */
  settings: Map<string, EffectiveTelemetry>;
}

const ACCESS_LOG_ONLY: EffectiveTelemetry = { accessLogging: true, problems: [] };

/** A provider's identity: a change of any setting makes a new tracer. */
function providerKey(p: TracingProviderRef, endpoint: { host: string; port: number }): string {
  return JSON.stringify([p.name, p.opentelemetry, endpoint]);
}

/** Spans by provider and outcome, read at each scrape: a collector that is down shows as dropped or failed. */
export function tracingSpansGauge(registry: Registry, stats: () => Record<string, TracerStats>): void {
  new Gauge({
    name: 'ambit_waypoint_tracing_spans',
    help: 'Spans of this waypoint since its tracer for the provider started, by outcome: exported (accepted by the collector), dropped (the queue was full), failed (sent and lost)',
    labelNames: ['provider', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [provider, st] of Object.entries(stats())) {
        this.set({ provider, outcome: 'exported' }, st.exported);
        this.set({ provider, outcome: 'dropped' }, st.dropped);
        this.set({ provider, outcome: 'failed' }, st.failed);
      }
    },
  });
}

export class WaypointTelemetry {
  private readonly opts: WaypointTelemetryOptions;
  private held: Held = { settings: new Map() };
  private gateway: { namespace: string; name: string } | undefined;
  private telemetries: TelemetryResource[] = [];
  private rootNamespace = 'istio-system';
  private mesh: MeshConfigResource | undefined;
  /** Tracers by provider key; a pending one is being created (the SDK loads asynchronously). */
  private readonly tracers = new Map<string, RequestTracer | 'loading'>();
  private readonly retired = new Set<RequestTracer>();

  constructor(opts: WaypointTelemetryOptions) {
    this.opts = opts;
  }

  /** Resolves a new configuration; tracers for providers no longer used are shut down. */
  update(config: {
    telemetries: Iterable<TelemetryResource>;
    meshConfig: MeshConfigResource | undefined;
    gateway: { namespace: string; name: string } | undefined;
    /** The mesh's root namespace (mesh-wide Telemetry lives there). */
    rootNamespace: string;
  }): void {
    this.rootNamespace = config.rootNamespace;
    this.telemetries = [...config.telemetries];
    this.mesh = config.meshConfig;
    this.gateway = config.gateway;
    this.held = { settings: new Map() };
    const wanted = new Set<string>();
    // Tracers are made for the providers the Gateway-level and the Services' settings name.
    for (const t of this.telemetries) {
      for (const ref of t.spec.targetRefs ?? (t.spec.targetRef ? [t.spec.targetRef] : [])) {
        if (ref.kind === 'Service') this.settingsFor(`${t.metadata.namespace ?? 'default'}/${ref.name}`);
      }
    }
    this.settingsFor('');
    for (const s of this.held.settings.values()) {
      const tracing = s.tracing;
      if (!tracing || tracing.disableSpanReporting) continue;
      const endpoint = this.endpointOf(tracing.provider);
      if (endpoint) wanted.add(providerKey(tracing.provider, endpoint));
    }
    for (const [key, tracer] of this.tracers) {
      if (wanted.has(key)) continue;
      this.tracers.delete(key);
      if (tracer !== 'loading') this.retire(tracer);
    }
  }

  /** The settings for traffic to `service` (`namespace/name`; undefined: addressed to a workload). */
  private settingsFor(service: string): EffectiveTelemetry {
    let found = this.held.settings.get(service);
    if (found) return found;
    if (!this.gateway) return ACCESS_LOG_ONLY;
    const [namespace, name] = service.split('/');
    found = resolveTelemetry(this.telemetries, this.mesh, {
      rootNamespace: this.rootNamespace,
      gateway: this.gateway,
      ...(namespace && name ? { service: { namespace, name } } : {}),
    });
    if (this.held.settings.size < 4096) this.held.settings.set(service, found);
    return found;
  }

  private endpointOf(p: TracingProviderRef): { host: string; port: number } | undefined {
    try {
      return this.opts.resolve(p.opentelemetry.service, p.opentelemetry.port);
    } catch (err) {
      this.opts.log.warn(
        { err: describeError(err), provider: p.name },
        'cannot resolve the tracing provider',
      );
      return undefined;
    }
  }

  /** Whether requests to `service` are written to the access log. */
  accessLogging(service: string | undefined): boolean {
    return this.settingsFor(service ?? '').accessLogging;
  }

  /** The tracing for requests to `service`, when a Telemetry turns it on and its tracer is ready. */
  tracing(service: string | undefined): RequestTracing | undefined {
    const tracing = this.settingsFor(service ?? '').tracing;
    if (!tracing) return undefined;
    const settings: RequestSettings = {
      samplingPercentage: tracing.samplingPercentage,
      customTags: tracing.customTags,
      disableSpanReporting: tracing.disableSpanReporting,
    };
    if (tracing.disableSpanReporting) return undefined;
    const endpoint = this.endpointOf(tracing.provider);
    if (!endpoint) return undefined;
    const key = providerKey(tracing.provider, endpoint);
    const tracer = this.tracers.get(key);
    if (tracer === undefined) this.create(key, tracing.provider, endpoint);
    return tracer === undefined || tracer === 'loading' ? undefined : { tracer, settings };
  }

  /** What each provider's tracer did (exported, dropped, failed), for the admin and metrics. */
  stats(): Record<string, TracerStats> {
    const out: Record<string, TracerStats> = {};
    for (const [key, t] of this.tracers) if (t !== 'loading') out[JSON.parse(key)[0]] = t.stats();
    return out;
  }

  async close(): Promise<void> {
    const all = [...this.tracers.values()].filter((t): t is RequestTracer => t !== 'loading');
    this.tracers.clear();
    await Promise.allSettled([...all, ...this.retired].map((t) => t.shutdown()));
  }

  /** Loads the SDK (first time) and makes the provider's tracer; requests until then are not traced. */
  private create(key: string, provider: TracingProviderRef, endpoint: { host: string; port: number }): void {
    this.tracers.set(key, 'loading');
    const gw = this.gateway;
    loadTracing().then(
      (factory) => {
        if (this.tracers.get(key) !== 'loading') return; // retired while loading
        const tracer = factory.create({
          provider,
          endpoint,
          serviceName: `${gw?.name ?? 'waypoint'}.${this.opts.namespace}`,
          proxy: {
            canonicalService: gw?.name ?? 'waypoint',
            namespace: this.opts.namespace,
            nodeId: `waypoint~${this.opts.replica}.${this.opts.namespace}~${this.opts.namespace}.svc.cluster.local`,
          },
          resourceAttributes: {
            'k8s.pod.name': this.opts.replica,
            'k8s.namespace.name': this.opts.namespace,
          },
          log: this.opts.log,
        });
        this.tracers.set(key, tracer);
      },
      (err: unknown) => {
        // Left 'loading': not retried for every request; a new configuration tries again.
        this.opts.log.error(
          { err: describeError(err) },
          'cannot load the OpenTelemetry SDK: requests are not traced',
        );
      },
    );
  }

  private retire(tracer: RequestTracer): void {
    this.retired.add(tracer);
    tracer.shutdown().then(
      () => this.retired.delete(tracer),
      () => this.retired.delete(tracer),
    );
  }
}
