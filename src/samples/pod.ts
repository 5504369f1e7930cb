// Who a sample says it is. The lab starts pod processes with AMBIT_POD, AMBIT_NODE,
// AMBIT_NAMESPACE, AMBIT_SERVICE_ACCOUNT and AMBIT_LABELS; explicit options win over those.

import { hostname } from 'node:os';
import { parseLabels } from './args.ts';

export interface PodInfo {
  readonly pod: string;
  readonly node: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The `version` label (or the explicit override); undefined when the pod has none. */
  readonly version: string | undefined;
}

/** Overrides for a pod's identity; every field is optional and beats the environment. */
export interface PodOverrides {
  pod?: string;
  node?: string;
  namespace?: string;
  serviceAccount?: string;
  labels?: Record<string, string>;
  version?: string;
}

/**
 * The pod's identity from overrides, then the environment, then defaults (the host name for pod
 * and node, `default` for namespace and service account). Throws on malformed AMBIT_LABELS.
 */
export function resolvePod(overrides: PodOverrides = {}, env: NodeJS.ProcessEnv = process.env): PodInfo {
  const host = hostname();
  const labels = {
    ...(env.AMBIT_LABELS ? parseLabels(env.AMBIT_LABELS, 'AMBIT_LABELS') : {}),
    ...overrides.labels,
  };
  if (overrides.version !== undefined) labels.version = overrides.version;
  return {
    pod: overrides.pod ?? nonEmpty(env.AMBIT_POD) ?? host,
    node: overrides.node ?? nonEmpty(env.AMBIT_NODE) ?? host,
    namespace: overrides.namespace ?? nonEmpty(env.AMBIT_NAMESPACE) ?? 'default',
    serviceAccount: overrides.serviceAccount ?? nonEmpty(env.AMBIT_SERVICE_ACCOUNT) ?? 'default',
    labels,
    version: labels.version,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
