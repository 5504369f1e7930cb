// Which policies bind a workload. AuthorizationPolicy: root namespace (mesh-wide), namespace,
// selector, or targetRefs (the waypoint enforces it). PeerAuthentication: workload selector beats
// namespace beats mesh-wide; DISABLE counts as PERMISSIVE (HBONE is always mTLS).

import type { AuthorizationPolicyResource, PeerAuthenticationResource } from '../../config/index.ts';
import { crossNamespaceTargetRefs, isWaypointPolicy } from '../../config/index.ts';
import type { MtlsMode, PolicyScope } from '../../policy/index.ts';
import type {
  PolicyBinding,
  RegistryIssue,
  RegistryService,
  WaypointBinding,
  WorkloadPeerAuth,
} from './types.ts';
import type { BaseWorkload } from './workloads.ts';
import { selects } from './workloads.ts';

const ns = (r: { metadata: { namespace?: string } }): string => r.metadata.namespace ?? 'default';
const id = (r: { metadata: { namespace?: string; name: string } }): string => `${ns(r)}/${r.metadata.name}`;

function hasSelector(selector: { matchLabels?: Record<string, string> } | undefined): boolean {
  return Object.keys(selector?.matchLabels ?? {}).length > 0;
}

/** The scope a ztunnel-enforced policy has: root namespace without selector = global. */
export function authorizationScope(policy: AuthorizationPolicyResource, rootNamespace: string): PolicyScope {
  if (hasSelector(policy.spec.selector)) return 'workload';
  return ns(policy) === rootNamespace ? 'global' : 'namespace';
}

/** One issue per AuthorizationPolicy whose targetRefs name another namespace (never bound). */
export function targetRefIssues(policies: readonly AuthorizationPolicyResource[]): RegistryIssue[] {
  return policies.flatMap((p) => {
    const foreign = crossNamespaceTargetRefs(p);
    if (foreign.length === 0) return [];
    return [
      {
        object: `AuthorizationPolicy ${id(p)}`,
        message: `${foreign.join(', ')} name another namespace; as in Istio, targetRefs bind only in the policy's own namespace, so they are ignored`,
      },
    ];
  });
}

export function bindAuthorizations(
  w: BaseWorkload,
  policies: readonly AuthorizationPolicyResource[],
  rootNamespace: string,
  servicesOfWorkload: readonly RegistryService[],
  waypoint: WaypointBinding | undefined,
): PolicyBinding[] {
  const out: PolicyBinding[] = [];
  for (const p of policies) {
    const pns = ns(p);
    if (isWaypointPolicy(p)) {
      const refs = p.spec.targetRefs ?? (p.spec.targetRef ? [p.spec.targetRef] : []);
      for (const ref of refs) {
        // As in Istio, a policy binds targets in its own namespace only (see crossNamespaceTargetRefs).
        if (ref.namespace && ref.namespace !== pns) continue; // empty: the policy's own namespace
        const refNs = pns;
        if (ref.kind === 'Service') {
          const svc = servicesOfWorkload.find(
            (s) => s.kind === undefined && s.namespace === refNs && s.name === ref.name,
          );
          if (svc) {
            const wp = svc.waypoint
              ? `its waypoint ${svc.waypoint.namespace}/${svc.waypoint.name}`
              : 'a waypoint, but the service has none';
            out.push({
              policy: id(p),
              scope: 'targetRef',
              enforcedBy: 'waypoint',
              why: `targets Service ${svc.key}, which selects this workload; enforced by ${wp}`,
            });
            break;
          }
        } else if (
          ref.kind === 'Gateway' &&
          waypoint &&
          waypoint.namespace === refNs &&
          waypoint.name === ref.name
        ) {
          out.push({
            policy: id(p),
            scope: 'targetRef',
            enforcedBy: 'waypoint',
            why: `targets Gateway ${refNs}/${ref.name}, this workload's waypoint`,
          });
          break;
        }
      }
      continue;
    }
    const scope = authorizationScope(p, rootNamespace);
    // A sidecar pod's own proxy enforces these (per request on its HTTP ports); an ambient pod's ztunnel.
    const enforcedBy = w.sidecar ? 'sidecar' : 'ztunnel';
    if (scope === 'global') {
      out.push({
        policy: id(p),
        scope,
        enforcedBy,
        why: `in the root namespace ${rootNamespace} without a selector: applies mesh-wide`,
      });
    } else if (scope === 'namespace' && pns === w.namespace) {
      out.push({
        policy: id(p),
        scope,
        enforcedBy,
        why: `in namespace ${pns} without a selector: applies to every workload there`,
      });
    } else if (
      scope === 'workload' &&
      (pns === w.namespace || pns === rootNamespace) &&
      selects(p.spec.selector?.matchLabels, w.labels)
    ) {
      const labels = Object.entries(p.spec.selector?.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      out.push({
        policy: id(p),
        scope,
        enforcedBy,
        why: `its selector ${labels} matches this workload's labels`,
      });
    }
  }
  return out;
}

/** Oldest first (creationTimestamp), then by name: the order Istio uses to pick among conflicting policies. */
function oldestFirst(a: PeerAuthenticationResource, b: PeerAuthenticationResource): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0;
}

function modeOf(mode: string | undefined): MtlsMode | undefined {
  if (mode === 'STRICT') return 'STRICT';
  if (mode === 'PERMISSIVE' || mode === 'DISABLE') return 'PERMISSIVE';
  return undefined; // UNSET or absent: inherit
}

export function resolvePeerAuth(
  w: BaseWorkload,
  policies: readonly PeerAuthenticationResource[],
  rootNamespace: string,
): WorkloadPeerAuth {
  const sorted = [...policies].sort(oldestFirst);
  const mesh = sorted.find((p) => ns(p) === rootNamespace && !hasSelector(p.spec.selector));
  const namespace = sorted.find((p) => ns(p) === w.namespace && !hasSelector(p.spec.selector));
  const workload = sorted.find(
    (p) =>
      ns(p) === w.namespace &&
      hasSelector(p.spec.selector) &&
      selects(p.spec.selector?.matchLabels, w.labels),
  );
  let mode: MtlsMode = 'PERMISSIVE';
  let source = 'default';
  for (const p of [mesh, namespace, workload]) {
    const m = modeOf(p?.spec.mtls?.mode);
    if (p && m) {
      mode = m;
      source = `PeerAuthentication ${id(p)}`;
    }
  }
  const portModes: Record<string, MtlsMode> = {};
  for (const [port, setting] of Object.entries(workload?.spec.portLevelMtls ?? {})) {
    const m = modeOf(setting.mode);
    if (m) portModes[port] = m;
  }
  return { mode, portModes, source };
}
