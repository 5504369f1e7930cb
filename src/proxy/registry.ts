// A proxy's metrics registry: Node's process metrics and Istio's `istio_build`, to which the proxy adds
// its own (TCP, requests).

import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * How often Node's event-loop delay is sampled for `nodejs_eventloop_lag_*`. prom-client's default, 10 ms,
 * is a timer that wakes an idle proxy 100 times a second (about 1 % of a core each: measured as 51 idle
 * sidecars taking half a core); once a second keeps the metric and lets an idle proxy sleep.
 */
export const EVENT_LOOP_SAMPLE_MS = 1000;

export function proxyRegistry(component: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  new Gauge({
    name: 'istio_build',
    help: 'Build information',
    labelNames: ['component', 'tag'],
    registers: [registry],
  }).set({ component, tag: 'ambit' }, 1);
  return registry;
}
