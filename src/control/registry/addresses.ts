// Who owns an address. One rule a tenant cannot win, used everywhere a conflict can still arise:
// the oldest object (creationTimestamp, then its store uid, then its key) owns a workload address,
// and a workload address is never a VIP. `AddressBook` answers the same question at apply time,
// inside the store transaction, so a conflicting Service or WorkloadEntry is refused up front.

import {
  type ConfigIssue,
  cidrMatcher,
  type Resource,
  resourceKey,
  type ServiceResource,
  type WorkloadEntryResource,
} from '../../config/index.ts';
import { canonicalIp } from '../../hbone/index.ts';
import type { RegistryIssue, VipTable } from './types.ts';
import { inVipRange, parseVipRange } from './vips.ts';
import type { BaseWorkload } from './workloads.ts';

/** The canonical spelling of an address (IPv4-mapped IPv6 folded to IPv4), or the text as given. */
export function canonicalAddress(ip: string): string {
  return canonicalIp(ip) ?? ip;
}

/** How old the object behind a workload is; lab pods have no timestamp and count as oldest. */
export interface Age {
  created: string;
  uid: string;
}

export const NO_AGE: Age = { created: '', uid: '' };

/** The age of a stored object (creationTimestamp, then the uid the store gave it). */
export function ageOf(resource: Resource): Age {
  const meta = resource.metadata as { creationTimestamp?: string; uid?: string };
  return { created: meta.creationTimestamp ?? '', uid: meta.uid ?? '' };
}

/** How issues name a workload: `Kind namespace/name`. */
export const workloadLabel = (w: { kind: string; namespace: string; name: string }) =>
  `${w.kind} ${w.namespace}/${w.name}`;

/** The namespace of the object an issue names (`Kind namespace/name`); undefined for a cluster-scoped one (`Kind name`). */
export function issueNamespace(object: string): string | undefined {
  return /^\S+ ([^/\s]+)\//.exec(object)?.[1];
}

function olderFirst(a: [BaseWorkload, Age], b: [BaseWorkload, Age]): number {
  const [wa, aa] = a;
  const [wb, ab] = b;
  if (aa.created !== ab.created) return aa.created < ab.created ? -1 : 1;
  if (aa.uid !== ab.uid) return aa.uid < ab.uid ? -1 : 1;
  return wa.uid < wb.uid ? -1 : wa.uid > wb.uid ? 1 : 0;
}

/**
 * Settle address conflicts between workloads: the oldest claimant of an address owns it, and every
 * later claimant is left out of the registry altogether (no endpoints, no placement, so no
 * certificate from that address) and reported. The result is sorted by workload uid.
 */
export function settleWorkloadAddresses(claimants: ReadonlyArray<[BaseWorkload, Age]>): {
  workloads: BaseWorkload[];
  owners: Map<string, BaseWorkload>;
  issues: RegistryIssue[];
} {
  const owners = new Map<string, BaseWorkload>();
  const workloads: BaseWorkload[] = [];
  const issues: RegistryIssue[] = [];
  for (const [w] of [...claimants].sort(olderFirst)) {
    const taken = w.addresses.map(canonicalAddress).find((a) => owners.has(a));
    if (taken !== undefined) {
      issues.push({
        object: workloadLabel(w),
        message: `address ${taken} belongs to ${workloadLabel(owners.get(taken)!)}, which is older; this workload is left out of the mesh until it has an address of its own`,
      });
      continue;
    }
    for (const a of w.addresses) owners.set(canonicalAddress(a), w);
    workloads.push(w);
  }
  workloads.sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
  return { workloads, owners, issues };
}

/** A Service's explicit clusterIPs with the field path each was written at ('None' and '' left out). */
export function explicitClusterIps(svc: ServiceResource): Array<{ ip: string; path: string }> {
  if (svc.spec.type === 'ExternalName') return [];
  if (svc.spec.clusterIPs !== undefined && svc.spec.clusterIPs.length > 0) {
    return svc.spec.clusterIPs
      .map((ip, i) => ({ ip, path: `spec.clusterIPs[${i}]` }))
      .filter((c) => c.ip !== 'None');
  }
  const ip = svc.spec.clusterIP;
  return ip === undefined || ip === '' || ip === 'None' ? [] : [{ ip, path: 'spec.clusterIP' }];
}

function entryAddress(we: WorkloadEntryResource): string | undefined {
  return we.spec.address === undefined ? undefined : canonicalAddress(we.spec.address);
}

/** What the book needs of a registry workload. */
export interface WorkloadAddresses {
  kind: string;
  namespace: string;
  name: string;
  addresses: readonly string[];
}

/**
 * Every address in use — Service VIPs (explicit and allocated) and workload addresses — by the key
 * of the object holding it, so an apply can be checked against the store and the batch so far.
 */
export class AddressBook {
  private readonly vips = new Map<string, string>();
  private readonly workloads = new Map<string, string>();
  /** What each object holds, so replacing it does not scan the whole book. */
  private readonly held = new Map<string, string[]>();
  private readonly range: ReturnType<typeof parseVipRange>;
  private readonly rangeCidr: string;
  private readonly reserved: (ip: string) => boolean;

  /**
   * `stored`: the store's objects; `allocated`: the registry's VIP table; `known`: the registry's
   * workloads, of which only those not kept in the store (pods) are taken — the store is the
   * newer word on WorkloadEntries.
   */
  constructor(
    stored: Iterable<Resource>,
    allocated: VipTable,
    vipRange: string,
    known: readonly WorkloadAddresses[] = [],
    reserved: readonly string[] = [],
  ) {
    this.reserved = cidrMatcher(reserved);
    this.rangeCidr = vipRange;
    this.range = parseVipRange(vipRange);
    for (const w of known) {
      if (w.kind === 'WorkloadEntry') continue;
      for (const a of w.addresses)
        this.workloads.set(canonicalAddress(a), `${w.kind}/${w.namespace}/${w.name}`);
    }
    // A ServiceEntry host's key is already `ServiceEntry/namespace/host`; a Service's is `namespace/name`.
    for (const [service, ip] of Object.entries(allocated))
      this.vips.set(
        canonicalAddress(ip),
        service.startsWith('ServiceEntry/') ? service : `Service/${service}`,
      );
    for (const r of stored) this.put(r);
  }

  /** True when the book has anything to say about this kind. */
  static concerns(resource: Resource): boolean {
    return resource.kind === 'Service' || resource.kind === 'WorkloadEntry';
  }

  /** The addresses `incoming` may not take, as apply errors; [] when it may be stored. */
  check(incoming: Resource, name: string): ConfigIssue[] {
    const key = resourceKey(incoming);
    const issue = (path: string, message: string): ConfigIssue => ({
      kind: incoming.kind,
      name,
      path,
      message,
    });
    if (incoming.kind === 'Service') {
      const out: ConfigIssue[] = [];
      for (const { ip, path } of explicitClusterIps(incoming)) {
        const addr = canonicalAddress(ip);
        const failed = `Invalid value: "${ip}": failed to allocate IP ${ip}`;
        if (!inVipRange(addr, this.range)) {
          out.push(
            issue(
              path,
              `${failed}: the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${this.rangeCidr}`,
            ),
          );
        } else if ((this.vips.get(addr) ?? key) !== key) {
          out.push(issue(path, `${failed}: provided IP is already allocated`));
        } else if (this.workloads.has(addr)) {
          out.push(issue(path, `${failed}: provided IP is already allocated (it is a workload's address)`));
        }
      }
      return out;
    }
    if (incoming.kind === 'WorkloadEntry') {
      const addr = entryAddress(incoming);
      if (addr === undefined) return [];
      const value = `Invalid value: "${incoming.spec.address}"`;
      if (this.reserved(addr)) {
        return [
          issue(
            'spec.address',
            `${value}: the address is reserved for the mesh's infrastructure (a node, a pod gateway, the control plane); a workload may not claim it`,
          ),
        ];
      }
      if ((this.workloads.get(addr) ?? key) !== key) {
        return [issue('spec.address', `${value}: the address is already another workload's`)];
      }
      if (this.vips.has(addr)) {
        return [issue('spec.address', `${value}: the address is a Service's virtual IP`)];
      }
    }
    return [];
  }

  /** The addresses an object asks for (explicit clusterIPs, a WorkloadEntry's address), canonical. */
  static addressesOf(resource: Resource): string[] {
    if (resource.kind === 'Service') return explicitClusterIps(resource).map((c) => canonicalAddress(c.ip));
    if (resource.kind === 'WorkloadEntry') {
      const addr = entryAddress(resource);
      return addr === undefined ? [] : [addr];
    }
    return [];
  }

  /** Record `resource` as stored, replacing what its key held before (an earlier holder keeps an address). */
  put(resource: Resource): void {
    if (!AddressBook.concerns(resource)) return;
    const key = resourceKey(resource);
    const book = resource.kind === 'Service' ? this.vips : this.workloads;
    for (const addr of this.held.get(key) ?? []) if (book.get(addr) === key) book.delete(addr);
    const addrs = AddressBook.addressesOf(resource);
    for (const addr of addrs) if (!book.has(addr)) book.set(addr, key);
    this.held.set(key, addrs);
  }
}
