// The names a mesh's services give: each service's hostname (a Service's `<name>.<ns>.svc.cluster.local`,
// a ServiceEntry's host, wildcards included) with its VIPs; a headless Service (no VIP) with its
// endpoints' addresses, as cluster DNS answers. Structural input, so the control plane's registry and
// the proxies' streamed services both fit without this folder knowing either.

import { isIPv4, isIPv6 } from 'node:net';
import type { DnsRecordSet } from './names.ts';

export interface NamedService {
  hostname: string;
  vips: readonly string[];
  endpoints: ReadonlyArray<{ address: string }>;
  /** `ServiceEntry` for hosts outside (or beside) the registry; absent for a Service. */
  kind?: string;
}

/**
 * One record set per hostname; services sharing a hostname pool their addresses. `include` picks the
 * services to answer for (the cluster DNS leaves ServiceEntries to the ztunnel, as CoreDNS does).
 */
export function serviceRecords(
  services: Iterable<NamedService>,
  include: (s: NamedService) => boolean = () => true,
): DnsRecordSet[] {
  const byName = new Map<string, { ipv4: Set<string>; ipv6: Set<string> }>();
  for (const s of services) {
    if (s.hostname === '' || !include(s)) continue;
    const addresses =
      s.vips.length > 0 || s.kind === 'ServiceEntry' ? s.vips : s.endpoints.map((e) => e.address);
    if (addresses.length === 0) continue;
    const name = s.hostname.toLowerCase().replace(/\.$/, '');
    let set = byName.get(name);
    if (!set) {
      set = { ipv4: new Set(), ipv6: new Set() };
      byName.set(name, set);
    }
    for (const a of addresses) {
      if (isIPv4(a)) set.ipv4.add(a);
      else if (isIPv6(a)) set.ipv6.add(a);
    }
  }
  return [...byName].map(([name, s]) => ({ name, ipv4: [...s.ipv4].sort(), ipv6: [...s.ipv6].sort() }));
}
