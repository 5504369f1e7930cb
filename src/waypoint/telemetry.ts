// The waypoint's Telemetry: per destination (its Gateway, and each Service it serves) the tracing and
// access-log settings Istio's precedence gives, resolved once per configuration; and one request tracer
// per OpenTelemetry provider in use, created only when some Telemetry turns tracing on (the SDK is not
// even loaded otherwise) and shut down when no Telemetry uses its provider any more.

import { Gauge, type Registry } from 'prom-client';
import type { MeshConfigResource, TelemetryResource } from '../config/index.ts';
import { describeError } from '../errors/index.ts';
import type { Logger } from '../log/index.ts';
import {
  loadTracing,
  type RequestSettings,
  type RequestTracer,
  resolveTelemetry,
  type TracerStats,
  type TracingProviderRef,
} from '../telemetry/index.ts';
import { serviceKeyParts } from '../xds/index.ts';

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

/**
 * What requests to one destination get, worked out once per configuration: whether they are logged, and
 * when they are traced, their provider's tracer key, where it sends and the settings each request takes.
 */
interface Destination {
  accessLogging: boolean;
  trace?: {
    key: string;
    provider: TracingProviderRef;
    endpoint: { host: string; port: number };
    settings: RequestSettings;
  };
}

const ACCESS_LOG_ONLY: Destination = { accessLogging: true };

/** Destinations kept worked out (a client walking workload addresses cannot grow it). */
const MAX_DESTINATIONS = 4096;

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
  /** By destination key: '' for the Gateway itself (traffic to a workload), else the Service key. */
  private destinations = new Map<string, Destination>();
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
    this.destinations = new Map();
    // Tracers are kept for the providers the Gateway-level and the Services' settings name.
    for (const t of this.telemetries) {
      for (const ref of t.spec.targetRefs ?? (t.spec.targetRef ? [t.spec.targetRef] : [])) {
        if (ref.kind === 'Service') this.destinationOf(`${t.metadata.namespace ?? 'default'}/${ref.name}`);
      }
    }
    this.destinationOf('');
    const wanted = new Set<string>();
    for (const d of this.destinations.values()) if (d.trace) wanted.add(d.trace.key);
    for (const [key, tracer] of this.tracers) {
      if (wanted.has(key)) continue;
      this.tracers.delete(key);
      if (tracer !== 'loading') this.retire(tracer);
    }
  }

  /** What requests to `service` (`namespace/name`; '': addressed to a workload) get. */
  private destinationOf(service: string): Destination {
    let found = this.destinations.get(service);
    if (found) return found;
    if (!this.gateway) return ACCESS_LOG_ONLY;
    const { namespace, name, entry } = serviceKeyParts(service);
    const t = resolveTelemetry(this.telemetries, this.mesh, {
      rootNamespace: this.rootNamespace,
      gateway: this.gateway,
      // Telemetry targetRefs name Services; a ServiceEntry's traffic gets the Gateway's and the mesh's.
      ...(namespace && name && !entry ? { service: { namespace, name } } : {}),
    });
    found = { accessLogging: t.accessLogging };
    const tracing = t.tracing;
    const endpoint = tracing && !tracing.disableSpanReporting ? this.endpointOf(tracing.provider) : undefined;
    if (tracing && endpoint) {
      found.trace = {
        key: providerKey(tracing.provider, endpoint),
        provider: tracing.provider,
        endpoint,
        settings: {
          samplingPercentage: tracing.samplingPercentage,
          customTags: tracing.customTags,
          disableSpanReporting: false,
        },
      };
    }
    if (this.destinations.size < MAX_DESTINATIONS) this.destinations.set(service, found);
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
    return this.destinationOf(service ?? '').accessLogging;
  }

  /** The tracing for requests to `service`, when a Telemetry turns it on and its tracer is ready. */
  tracing(service: string | undefined): RequestTracing | undefined {
    const trace = this.destinationOf(service ?? '').trace;
    if (!trace) return undefined;
    const tracer = this.tracers.get(trace.key);
    if (tracer === undefined) this.create(trace.key, trace.provider, trace.endpoint);
    return tracer === undefined || tracer === 'loading' ? undefined : { tracer, settings: trace.settings };
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
