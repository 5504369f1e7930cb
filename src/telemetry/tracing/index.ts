// Tracing at the waypoint: which Telemetry settings apply (pure, always loaded) and a request tracer over
// the OpenTelemetry SDK, loaded only by `loadTracing()` so that a waypoint that never traces never pays for it.

import type { TracingFactory } from './types.ts';

export {
  type CustomTag,
  DEFAULT_SAMPLING_PERCENTAGE,
  type EffectiveTelemetry,
  type EffectiveTracing,
  resolveTelemetry,
  type TelemetryProblem,
  type TelemetryScope,
  type TracingProviderRef,
} from './resolve.ts';
export {
  type AttemptResult,
  type IncomingRequest,
  type Peer,
  PROPAGATION_HEADERS,
  type ProxyIdentity,
  type RequestHeaders,
  type RequestResult,
  type RequestSettings,
  type RequestSpan,
  type RequestTracer,
  type TracerOptions,
  type TracerStats,
  type TracingFactory,
  type UpstreamAttempt,
  type UpstreamTarget,
} from './types.ts';

let loading: Promise<TracingFactory> | undefined;

/** Loads the OpenTelemetry SDK (once per process) and returns the factory of request tracers. */
export function loadTracing(): Promise<TracingFactory> {
  loading ??= import('./tracer.ts').then((m) => m.tracingFactory);
  // A failed load (a package missing) may be retried by the next call.
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}
