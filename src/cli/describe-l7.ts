// What `ambit describe` says of L7: for a Service (or a workload's Services) and the waypoint they use,
// the AuthorizationPolicies, RequestAuthentications and RateLimitPolicies whose targetRefs bind them,
// and the tracing and access-log settings Telemetry gives — what that waypoint enforces for them.

import {
  type AuthorizationPolicyResource,
  bindsTarget,
  type MeshConfigResource,
  type RateLimitPolicyResource,
  type RequestAuthenticationResource,
  type TelemetryResource,
} from '../config/index.ts';
import { resolveTelemetry } from '../telemetry/index.ts';
import type { AdminClient } from './client.ts';

type Listed<T> = { items: T[] };

/**
 * Every object of a kind the token may read: across all namespaces, or (a token for some namespaces
 * only) the one given.
 */
export async function listAll<T>(
  api: AdminClient,
  base: string,
  plural: string,
  namespace: string,
): Promise<T[]> {
  const list = await api
    .call<Listed<T>>('GET', `${base}/${plural}`)
    .catch(() => api.call<Listed<T>>('GET', `${base}/namespaces/${namespace}/${plural}`));
  return list.items;
}

/** `listAll`, or none when the token may read none: what describe shows is what it may see. */
const readable = <T>(api: AdminClient, base: string, plural: string, namespace: string): Promise<T[]> =>
  listAll<T>(api, base, plural, namespace).catch(() => []);

const id = (r: { metadata: { name: string; namespace?: string } }) =>
  `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;

/** The lines under "L7 (at waypoint …)" for traffic to each of `services` through `waypoint`. */
export async function l7Lines(
  api: AdminClient,
  namespace: string,
  services: readonly string[],
  waypoint: { namespace: string; name: string } | undefined,
): Promise<string[]> {
  if (!waypoint) return ['  none: no waypoint, so no L7 policy, rate limit or tracing applies'];
  const [aps, ras, rlps, tels, meshes] = await Promise.all([
    readable<AuthorizationPolicyResource>(
      api,
      '/apis/security.istio.io/v1',
      'authorizationpolicies',
      namespace,
    ),
    readable<RequestAuthenticationResource>(
      api,
      '/apis/security.istio.io/v1',
      'requestauthentications',
      namespace,
    ),
    readable<RateLimitPolicyResource>(api, '/apis/ambit.dev/v1alpha1', 'ratelimitpolicies', namespace),
    readable<TelemetryResource>(api, '/apis/telemetry.istio.io/v1', 'telemetries', namespace),
    readable<MeshConfigResource>(api, '/apis/ambit.dev/v1alpha1', 'meshconfigs', namespace),
  ]);
  const gateway = `${waypoint.namespace}/${waypoint.name}`;
  const out: string[] = [`  at waypoint ${gateway}`];
  for (const service of services) {
    const target = { gateway, service };
    const bound = <T extends { metadata: { name: string; namespace?: string } }>(list: T[]) =>
      list.filter((p) => p.metadata && bindsTarget(p as never, target));
    const routeLimits = rlps.filter((p) =>
      p.spec.targetRefs.some((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute'),
    );
    out.push(`  to ${service}:`);
    const authz = bound(aps);
    out.push(
      `    AuthorizationPolicy:   ${authz.map((p) => `${id(p)} (${p.spec.action ?? 'ALLOW'}${p.spec.provider ? ` via ${p.spec.provider.name}` : ''})`).join(', ') || 'none (requests allowed)'}`,
    );
    out.push(`    RequestAuthentication: ${bound(ras).map(id).join(', ') || 'none'}`);
    const limits = bound(rlps).map(id);
    out.push(`    RateLimitPolicy:       ${limits.join(', ') || 'none'}`);
    if (routeLimits.length > 0) out.push(`      and on routes: ${routeLimits.map(id).join(', ')}`);
    const [ns, name] = service.split('/');
    const t = resolveTelemetry(tels, meshes[0], {
      rootNamespace: 'istio-system',
      gateway: { namespace: waypoint.namespace, name: waypoint.name },
      ...(ns && name ? { service: { namespace: ns, name } } : {}),
    });
    const tracing = t.tracing
      ? `${t.tracing.provider.name} at ${t.tracing.samplingPercentage}%${t.tracing.disableSpanReporting ? ' (span reporting disabled)' : ''}`
      : 'off';
    out.push(`    Tracing:               ${tracing}; access log ${t.accessLogging ? 'on' : 'off'}`);
    for (const p of t.problems) out.push(`      Telemetry ${p.namespace}/${p.name}: ${p.message}`);
  }
  return out;
}
