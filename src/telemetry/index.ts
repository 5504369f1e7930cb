// Telemetry: Istio-compatible metric names and labels (so existing dashboards and alerts work) and
// one structured access-log line per connection.

export { type ConnectionRecord, logConnection } from './access-log.ts';
export { TELEMETRY_ERRORS } from './errors.ts';
export { type RequestLabels, RequestMetrics, type RequestSample } from './request-metrics.ts';
export { type TcpLabels, TcpMetrics } from './tcp-metrics.ts';
