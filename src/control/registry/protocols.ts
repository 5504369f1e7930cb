// The mesh carries TCP only, as Istio's ambient mode does: UDP and SCTP to a meshed pod are neither
// captured nor encrypted, and STRICT PeerAuthentication and AuthorizationPolicy do not apply to them.
// A Service in an ambient namespace that declares such ports gets an issue saying so.

import type { NamespaceResource, ServiceResource } from '../../config/index.ts';
import type { RegistryIssue } from './types.ts';
import { DATAPLANE_MODE } from './workloads.ts';

/** One issue per Service in an ambient namespace with UDP or SCTP ports, naming the ports. */
export function nonTcpPortIssues(
  services: ReadonlyMap<string, ServiceResource>,
  namespaces: ReadonlyMap<string, NamespaceResource>,
): RegistryIssue[] {
  const issues: RegistryIssue[] = [];
  for (const [key, svc] of services) {
    const namespace = svc.metadata.namespace ?? 'default';
    if (namespaces.get(namespace)?.metadata.labels?.[DATAPLANE_MODE] !== 'ambient') continue;
    const ports = (svc.spec?.ports ?? [])
      .filter((p) => p.protocol === 'UDP' || p.protocol === 'SCTP')
      .map((p) => `${p.name ?? p.port} (${p.port}/${p.protocol})`);
    if (ports.length === 0) continue;
    issues.push({
      object: `Service ${key}`,
      message: `declares ${ports.length === 1 ? 'port' : 'ports'} ${ports.join(', ')} in ambient namespace ${namespace}, but the mesh carries TCP only (as Istio ambient does): UDP and SCTP reach its pods without mTLS, and STRICT PeerAuthentication and AuthorizationPolicy do not apply to them; use a NetworkPolicy (or the host firewall) to restrict them`,
    });
  }
  return issues;
}
