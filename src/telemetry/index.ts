// Telemetry: Istio-compatible metric names and labels (so existing dashboards and alerts work), one
// structured access-log line per connection, and request tracing (the Telemetry resource's resolution,
// and a tracer over the OpenTelemetry SDK that is loaded only when something traces).

export { type ConnectionRecord, logConnection } from './access-log.ts';
export { TELEMETRY_ERRORS } from './errors.ts';
export { type RequestLabels, RequestMetrics, type RequestSample } from './request-metrics.ts';
export { type TcpLabels, TcpMetrics } from './tcp-metrics.ts';
export {
  type EffectiveTelemetry,
  type EffectiveTracing,
  loadTracing,
  PROPAGATION_HEADERS,
  type RequestSettings,
  type RequestSpan,
  type RequestTracer,
  resolveTelemetry,
  type TelemetryProblem,
  type TracerStats,
  type TracingProviderRef,
  type UpstreamAttempt,
} from './tracing/index.ts';
