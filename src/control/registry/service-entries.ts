// ServiceEntries in the registry: each host of an entry becomes one service, keyed
// `ServiceEntry/<namespace>/<host>` (never a Service's `namespace/name`), named by the host (wildcards
// kept as `*.example.com`), with the entry's addresses as VIPs or one allocated like a Service's, and
// endpoints as the resolution says: inline IPs (STATIC), selected pods and WorkloadEntries, or names a
// proxy resolves when it connects (DNS). Within a namespace the oldest entry keeps a host.

import { isIP } from 'node:net';
import { isWildcardHost, type Resource, resourceKey, type ServiceEntryResource } from '../../config/index.ts';
import { SERVICE_ENTRY_KEY_PREFIX } from '../../xds/index.ts';
import { ageOf, canonicalAddress } from './addresses.ts';
import { type WorkloadIndex, workloadEndpoint } from './services.ts';
import type {
  Endpoint,
  RegistryIssue,
  RegistryService,
  RegistryServicePort,
  WaypointBinding,
  WorkloadUid,
} from './types.ts';
import type { EntryVipClaims, VipAssignment } from './vips.ts';
import { selects } from './workloads.ts';

/** The registry key of one host of a ServiceEntry in `namespace`. */
export function entryHostKey(namespace: string, host: string): string {
  return `${SERVICE_ENTRY_KEY_PREFIX}${namespace}/${host}`;
}

/** One host of one ServiceEntry, after conflicts are settled. */
export interface EntryHost {
  key: string;
  host: string;
  namespace: string;
  entry: ServiceEntryResource;
  /** The entry's `spec.addresses` that a VIP can be (plain IPs; CIDRs are reported and left out). */
  addresses: string[];
}

const entryLabel = (se: ServiceEntryResource) =>
  `ServiceEntry ${se.metadata.namespace ?? 'default'}/${se.metadata.name}`;

function olderFirst(a: ServiceEntryResource, b: ServiceEntryResource): number {
  const [aa, ab] = [ageOf(a as Resource), ageOf(b as Resource)];
  if (aa.created !== ab.created) return aa.created < ab.created ? -1 : 1;
  if (aa.uid !== ab.uid) return aa.uid < ab.uid ? -1 : 1;
  const [ka, kb] = [resourceKey(a), resourceKey(b)];
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * The hosts of every entry, one per (namespace, host): the oldest entry keeps a host and a later one
 * that names it again is reported (its other hosts stay). CIDR addresses are reported as unsupported.
 */
export function settleEntryHosts(entries: readonly ServiceEntryResource[]): {
  hosts: EntryHost[];
  issues: RegistryIssue[];
} {
  const owner = new Map<string, ServiceEntryResource>();
  const hosts: EntryHost[] = [];
  const issues: RegistryIssue[] = [];
  for (const se of [...entries].sort(olderFirst)) {
    const namespace = se.metadata.namespace ?? 'default';
    const addresses: string[] = [];
    for (const a of se.spec.addresses ?? []) {
      const bare = a.replace(/\/(32|128)$/, '');
      if (isIP(bare) !== 0) addresses.push(canonicalAddress(bare));
      else
        issues.push({
          object: entryLabel(se),
          message: `address ${a} is a CIDR block, which Ambit does not capture yet: connections to it are not attributed to this entry (list single addresses instead)`,
        });
    }
    for (const host of se.spec.hosts) {
      const key = entryHostKey(namespace, host);
      const first = owner.get(key);
      if (first) {
        issues.push({
          object: entryLabel(se),
          message: `host ${host} is already ${entryLabel(first)}'s, which is older and keeps it; this entry's ${host} is left out until it is removed from one of them`,
        });
        continue;
      }
      owner.set(key, se);
      hosts.push({ key, host, namespace, entry: se, addresses });
    }
  }
  return { hosts, issues };
}

/**
 * What the hosts ask of the VIP range: as Istio auto-allocates, a host with no `addresses`, not a
 * wildcard and not resolution NONE (whose traffic goes to the address the client found itself) gets one.
 */
export function entryVipClaims(hosts: readonly EntryHost[]): EntryVipClaims {
  const auto: string[] = [];
  const fixed = new Map<string, string>();
  const objects = new Map<string, string>();
  for (const h of hosts) {
    objects.set(h.key, entryLabel(h.entry));
    for (const a of h.addresses) if (!fixed.has(a)) fixed.set(a, h.key);
    if (h.addresses.length === 0 && !isWildcardHost(h.host) && h.entry.spec.resolution !== 'NONE')
      auto.push(h.key);
  }
  return { auto, fixed, objects };
}

/**
 * The VIPs a host serves: its addresses, less any that is a workload's address or another service's
 * VIP (which keeps it, reported), or its allocation.
 */
export function entryVips(
  h: EntryHost,
  allocated: VipAssignment | undefined,
  otherHolder: (ip: string) => string | undefined,
): { vips: VipAssignment; issues: RegistryIssue[] } {
  if (h.addresses.length === 0) return { vips: allocated ?? { vips: [], source: 'none' }, issues: [] };
  const issues: RegistryIssue[] = [];
  const vips = h.addresses.filter((a) => {
    const holder = otherHolder(a);
    if (holder === undefined) return true;
    issues.push({
      object: entryLabel(h.entry),
      message: `address ${a} of host ${h.host} is already ${holder}'s, which keeps it; the entry is not reached at that address`,
    });
    return false;
  });
  return { vips: { vips, source: vips.length > 0 ? 'spec' : 'none' }, issues };
}

const APP_PROTOCOL: Record<string, string> = {
  HTTP: 'http',
  HTTP2: 'http2',
  GRPC: 'grpc',
  HTTPS: 'tls',
  TLS: 'tls',
  MONGO: 'mongo',
  TCP: 'tcp',
};

function entryPorts(se: ServiceEntryResource): RegistryServicePort[] {
  return (se.spec.ports ?? []).map((p) => ({
    name: p.name,
    port: p.number,
    targetPort: p.targetPort ?? p.number,
    protocol: 'TCP',
    appProtocol: p.protocol === undefined ? undefined : APP_PROTOCOL[p.protocol],
  }));
}

/** Each service port → the port it reaches: by name in `named` (an endpoint's or workload's), else targetPort. */
function portMap(
  ports: readonly RegistryServicePort[],
  named: Readonly<Record<string, number>> = {},
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of ports)
    out[String(p.port)] =
      (p.name && named[p.name]) || (typeof p.targetPort === 'number' ? p.targetPort : p.port);
  return out;
}

type DnsEndpoints = NonNullable<RegistryService['dnsEndpoints']>;

function entryEndpoints(
  h: EntryHost,
  ports: readonly RegistryServicePort[],
  candidates: WorkloadIndex,
): { endpoints: Endpoint[]; dnsEndpoints: DnsEndpoints | undefined } {
  const se = h.entry;
  const name = se.metadata.name;
  const resolution = se.spec.resolution;
  const endpoints: Endpoint[] = [];
  const dnsEndpoints: DnsEndpoints = [];
  const selector = se.spec.workloadSelector?.labels;
  if (se.spec.workloadSelector !== undefined) {
    for (const w of candidates(h.namespace, selector)) {
      const address = w.addresses[0];
      if (w.namespace !== h.namespace || address === undefined || !selects(selector, w.labels)) continue;
      endpoints.push(workloadEndpoint(w, address, portMap(ports, w.ports)));
    }
  }
  (se.spec.endpoints ?? []).forEach((ep, i) => {
    const address = ep.address ?? '';
    const mapped = portMap(ports, ep.ports);
    if (isIP(address) !== 0) {
      endpoints.push({
        workload: `${SERVICE_ENTRY_KEY_PREFIX}${h.namespace}/${name}/${i}` as WorkloadUid,
        name: `${name}/endpoints[${i}]`,
        address: canonicalAddress(address),
        node: undefined,
        enrolled: false,
        sidecar: false,
        ports: mapped,
      });
    } else if (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') {
      dnsEndpoints.push({ hostname: address, ports: mapped });
    }
  });
  // DNS with no endpoints: the host is its own endpoint (validation refuses a wildcard host here).
  const dns = resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN';
  if (dns && (se.spec.endpoints ?? []).length === 0 && se.spec.workloadSelector === undefined)
    dnsEndpoints.push({ hostname: h.host, ports: portMap(ports) });
  return { endpoints, dnsEndpoints: dns ? dnsEndpoints : undefined };
}

export function buildEntryService(
  h: EntryHost,
  vips: VipAssignment,
  candidates: WorkloadIndex,
  waypoint: WaypointBinding | undefined,
): RegistryService {
  const se = h.entry;
  const ports = entryPorts(se);
  const { endpoints, dnsEndpoints } = entryEndpoints(h, ports, candidates);
  return {
    key: h.key,
    name: se.metadata.name,
    namespace: h.namespace,
    hostname: h.host,
    vips: vips.vips,
    vipSource: vips.source,
    ports,
    selector: se.spec.workloadSelector?.labels,
    endpoints,
    waypoint,
    labels: { ...se.metadata.labels },
    kind: 'ServiceEntry',
    location: se.spec.location,
    resolution: se.spec.resolution,
    ...(dnsEndpoints ? { dnsEndpoints } : {}),
  };
}
