// A proxy's metrics registry: Node's process metrics and Istio's `istio_build`, to which the proxy adds
// its own (TCP, requests).

import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

export function proxyRegistry(component: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'istio_build',
    help: 'Build information',
    labelNames: ['component', 'tag'],
    registers: [registry],
  }).set({ component, tag: 'ambit' }, 1);
  return registry;
}
