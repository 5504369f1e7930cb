// Which tracing and access-log settings a waypoint applies, from the Telemetry resources and the
// MeshConfig, with Istio's precedence: the root namespace (mesh), then the waypoint's namespace, then
// the Telemetries whose targetRefs name the waypoint's Gateway, the destination Service or the waypoint
// GatewayClass. A more specific level overrides a field only when it sets it. Pure: decides, never acts.

import {
  type MeshConfigResource,
  type OpenTelemetryProvider,
  type TelemetryResource,
  WAYPOINT_CLASSES,
} from '../../config/index.ts';

type TracingEntry = NonNullable<TelemetryResource['spec']['tracing']>[number];
type AccessLoggingEntry = NonNullable<TelemetryResource['spec']['accessLogging']>[number];
type TargetRef = NonNullable<TelemetryResource['spec']['targetRefs']>[number];

/** A custom span tag as the Telemetry resource writes it: exactly one of literal, environment, header. */
export type CustomTag = NonNullable<TracingEntry['customTags']>[string];

/**
 * The sampling percentage when no Telemetry level sets `randomSamplingPercentage`. Istio's Telemetry
 * reference says 0%, but istiod falls back to `defaultConfig.tracing.sampling` and then to
 * PILOT_TRACE_SAMPLING, whose default is 1%: what a proxy actually does is 1%, so Ambit uses 1%.
 */
export const DEFAULT_SAMPLING_PERCENTAGE = 1;

export interface TracingProviderRef {
  name: string;
  opentelemetry: OpenTelemetryProvider;
}

export interface EffectiveTracing {
  provider: TracingProviderRef;
  /** Percentage (0–100) of requests with no sampling decision of their own that are traced. */
  samplingPercentage: number;
  customTags: Record<string, CustomTag>;
  /** Spans are neither made nor reported; the client's trace headers pass through unchanged. */
  disableSpanReporting: boolean;
}

/** Something wrong in one Telemetry that its status should say. */
export interface TelemetryProblem {
  namespace: string;
  name: string;
  message: string;
}

export interface EffectiveTelemetry {
  /** Absent: this waypoint does not trace (no provider named anywhere, or the one named is unusable). */
  tracing?: EffectiveTracing;
  /** The waypoint's access log (one line per request): on unless a Telemetry disables it. */
  accessLogging: boolean;
  problems: TelemetryProblem[];
}

/** Where the waypoint stands: the mesh's root namespace, its own Gateway, and the Service a request is for. */
export interface TelemetryScope {
  rootNamespace: string;
  gateway: { namespace: string; name: string };
  service?: { namespace: string; name: string };
}

const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

const namespaceOf = (t: TelemetryResource): string => t.metadata.namespace ?? 'default';

function targetRefsOf(t: TelemetryResource): TargetRef[] {
  if (t.spec.targetRefs && t.spec.targetRefs.length > 0) return t.spec.targetRefs;
  return t.spec.targetRef ? [t.spec.targetRef] : [];
}

const isNamespaceWide = (t: TelemetryResource): boolean =>
  Object.keys(t.spec.selector?.matchLabels ?? {}).length === 0 && targetRefsOf(t).length === 0;

/** Istio orders Telemetries by creation time (oldest first), then by name. */
function byAge(a: TelemetryResource, b: TelemetryResource): number {
  const at = a.metadata.creationTimestamp ?? '';
  const bt = b.metadata.creationTimestamp ?? '';
  if (at !== bt) return at < bt ? -1 : 1;
  const an = `${namespaceOf(a)}/${a.metadata.name}`;
  const bn = `${namespaceOf(b)}/${b.metadata.name}`;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

const isGroupKind = (ref: TargetRef, group: string, kind: string): boolean =>
  (ref.group ?? '') === group && ref.kind === kind;

/** Whether a Telemetry's targetRefs attach it to this waypoint, as Istio's policy matcher decides for a waypoint. */
function attaches(t: TelemetryResource, at: TelemetryScope): boolean {
  const ns = namespaceOf(t);
  return targetRefsOf(t).some((ref) => {
    if (isGroupKind(ref, GATEWAY_API_GROUP, 'Gateway'))
      return ns === at.gateway.namespace && ref.name === at.gateway.name;
    if (isGroupKind(ref, '', 'Service') || isGroupKind(ref, 'core', 'Service'))
      return at.service !== undefined && ns === at.service.namespace && ref.name === at.service.name;
    if (isGroupKind(ref, GATEWAY_API_GROUP, 'GatewayClass'))
      return ns === at.rootNamespace && WAYPOINT_CLASSES.includes(ref.name);
    return false;
  });
}

/** The Telemetries that apply, least specific first, and a problem for each ignored duplicate. */
function levels(
  telemetries: readonly TelemetryResource[],
  at: TelemetryScope,
): { applied: TelemetryResource[]; problems: TelemetryProblem[] } {
  const sorted = [...telemetries].sort(byAge);
  const problems: TelemetryProblem[] = [];
  const namespaceWide = (ns: string): TelemetryResource | undefined => {
    const all = sorted.filter((t) => namespaceOf(t) === ns && isNamespaceWide(t));
    for (const extra of all.slice(1)) {
      problems.push({
        namespace: ns,
        name: extra.metadata.name,
        message: `ignored: namespace ${ns} already has a Telemetry without selector or targetRefs (${all[0]!.metadata.name}, the oldest); a namespace may have only one`,
      });
    }
    return all[0];
  };
  const applied: TelemetryResource[] = [];
  const root = namespaceWide(at.rootNamespace);
  if (root) applied.push(root);
  if (at.gateway.namespace !== at.rootNamespace) {
    const own = namespaceWide(at.gateway.namespace);
    if (own) applied.push(own);
  }
  // A waypoint never uses selector-based Telemetries (Istio ignores them for waypoints).
  applied.push(...sorted.filter((t) => !isNamespaceWide(t) && attaches(t, at)));
  return { applied, problems };
}

/** Istio's waypoint is the server side: entries for CLIENT only do not apply. */
const appliesToWaypoint = (entry: { match?: { mode?: string } | undefined }): boolean =>
  entry.match?.mode !== 'CLIENT';

interface Fetched {
  provider?: TracingProviderRef;
  problem?: string;
}

function fetchProvider(mesh: MeshConfigResource | undefined, name: string): Fetched {
  const providers = mesh?.spec.extensionProviders ?? [];
  // Istio compares provider names case-insensitively.
  const found = providers.find((p) => p.name.toLowerCase() === name.toLowerCase());
  if (!found) {
    const known = providers.filter((p) => p.opentelemetry).map((p) => p.name);
    return {
      problem: `"${name}" is not an extension provider of MeshConfig ${mesh ? `"${mesh.metadata.name}"` : '(there is none)'}${known.length > 0 ? `; opentelemetry providers: ${known.join(', ')}` : ''}; no tracing from this Telemetry`,
    };
  }
  if (!found.opentelemetry)
    return {
      problem: `extension provider "${found.name}" cannot trace (only opentelemetry providers can); no tracing from this Telemetry`,
    };
  return { provider: { name: found.name, opentelemetry: found.opentelemetry } };
}

interface TracingState {
  provider?: TracingProviderRef;
  samplingPercentage?: number;
  customTags?: Record<string, CustomTag>;
  disableSpanReporting: boolean;
}

function mergeTracing(
  applied: readonly TelemetryResource[],
  mesh: MeshConfigResource | undefined,
  problems: TelemetryProblem[],
): EffectiveTracing | undefined {
  const defaults = mesh?.spec.defaultProviders?.tracing ?? [];
  const entries = applied.flatMap((t) =>
    (t.spec.tracing ?? [])
      .map((entry, i) => ({ t, entry, i }))
      .filter(({ entry }) => appliesToWaypoint(entry)),
  );
  if (entries.length === 0 && defaults.length === 0) return undefined;

  const state: TracingState = { disableSpanReporting: false };
  // Istio uses the first of several default providers; MeshConfig validation already checked each.
  if (defaults.length > 0) state.provider = fetchProvider(mesh, defaults[0]!).provider;

  for (const { t, entry, i } of entries) {
    const names = (entry.providers ?? []).map((p) => p.name);
    if (names.length > 0) {
      const fetched = fetchProvider(mesh, names[0]!);
      state.provider = fetched.provider;
      const problem = (message: string) =>
        problems.push({
          namespace: namespaceOf(t),
          name: t.metadata.name,
          message: `tracing[${i}].providers: ${message}`,
        });
      if (fetched.problem) problem(fetched.problem);
      if (names.length > 1)
        problem(
          `a proxy reports to one tracing provider; "${names[0]}" is used, ${names.slice(1).join(', ')} ignored`,
        );
    }
    if (entry.disableSpanReporting !== undefined) state.disableSpanReporting = entry.disableSpanReporting;
    // Istio replaces the whole map (no merge by tag name): the most specific level's tags win.
    if (entry.customTags !== undefined) state.customTags = entry.customTags;
    if (entry.randomSamplingPercentage !== undefined)
      state.samplingPercentage = entry.randomSamplingPercentage;
  }

  if (!state.provider) return undefined;
  return {
    provider: state.provider,
    samplingPercentage: state.samplingPercentage ?? DEFAULT_SAMPLING_PERCENTAGE,
    customTags: state.customTags ?? {},
    disableSpanReporting: state.disableSpanReporting,
  };
}

function mergeAccessLogging(applied: readonly TelemetryResource[], problems: TelemetryProblem[]): boolean {
  let on = true;
  for (const t of applied) {
    (t.spec.accessLogging ?? []).forEach((entry: AccessLoggingEntry, i) => {
      if (!appliesToWaypoint(entry)) return;
      on = entry.disabled !== true;
      if (entry.filter !== undefined && on)
        problems.push({
          namespace: namespaceOf(t),
          name: t.metadata.name,
          message: `accessLogging[${i}].filter: not supported by Ambit's waypoint; every request is logged`,
        });
    });
  }
  return on;
}

/** The tracing and access-log settings for requests through one waypoint to one Service. */
export function resolveTelemetry(
  telemetries: readonly TelemetryResource[],
  mesh: MeshConfigResource | undefined,
  at: TelemetryScope,
): EffectiveTelemetry {
  const { applied, problems } = levels(telemetries, at);
  const tracing = mergeTracing(applied, mesh, problems);
  const accessLogging = mergeAccessLogging(applied, problems);
  return tracing ? { tracing, accessLogging, problems } : { accessLogging, problems };
}
