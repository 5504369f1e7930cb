// Service VIP allocation from the VIP range. Stable: a service keeps the address it had in the
// previous table; new services take the lowest free address. Explicit clusterIPs always win.

import { isIP } from 'node:net';
import type { ServiceResource } from '../../config/index.ts';
import type { RegistryIssue, VipTable } from './types.ts';

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

interface Range {
  first: number;
  last: number;
}

/** Usable addresses of an IPv4 CIDR: the network and broadcast addresses are never handed out. */
export function parseVipRange(cidr: string): Range {
  const [addr = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText);
  if (isIP(addr) !== 4 || !/^\d+$/.test(prefixText) || prefix < 8 || prefix > 30) {
    throw new RangeError(
      `VIP range "${cidr}" must be an IPv4 CIDR with a prefix from /8 to /30, such as 198.19.0.0/16`,
    );
  }
  const size = 2 ** (32 - prefix);
  const network = ipv4ToInt(addr) - (ipv4ToInt(addr) % size);
  return { first: network + 1, last: network + size - 2 };
}

function inRange(ip: string, range: Range): boolean {
  if (isIP(ip) !== 4) return false;
  const n = ipv4ToInt(ip);
  return n >= range.first && n <= range.last;
}

export interface VipAssignment {
  vips: string[];
  source: 'spec' | 'allocated' | 'none';
}

export interface VipResult {
  byService: Map<string, VipAssignment>;
  table: VipTable;
  issues: RegistryIssue[];
}

function explicitVips(svc: ServiceResource): string[] | undefined {
  const ips = svc.spec.clusterIPs ?? (svc.spec.clusterIP ? [svc.spec.clusterIP] : undefined);
  return ips === undefined || ips.length === 0 ? undefined : ips;
}

/**
 * Assign VIPs to `services` (keyed `namespace/name`, any order). Deterministic: the same inputs
 * always give the same table, and a service present in `previous` keeps its address.
 */
export function allocateVips(
  services: ReadonlyMap<string, ServiceResource>,
  previous: VipTable,
  rangeCidr: string,
): VipResult {
  const range = parseVipRange(rangeCidr);
  // Oldest first (then by key), so an explicit clusterIP clash is settled in favour of the service that had it first.
  const created = (key: string) => services.get(key)?.metadata.creationTimestamp ?? '';
  const keys = [...services.keys()].sort((a, b) =>
    created(a) < created(b) ? -1 : created(a) > created(b) ? 1 : a < b ? -1 : a > b ? 1 : 0,
  );
  const byService = new Map<string, VipAssignment>();
  const issues: RegistryIssue[] = [];
  const used = new Map<string, string>();
  const needs: string[] = [];

  for (const key of keys) {
    const svc = services.get(key)!;
    const explicit = explicitVips(svc);
    if (svc.spec.type === 'ExternalName' || explicit?.[0] === 'None') {
      byService.set(key, { vips: [], source: 'none' });
    } else if (explicit) {
      const clash = explicit.find((ip) => used.has(ip));
      if (clash) {
        issues.push({
          object: `Service ${key}`,
          message: `clusterIP ${clash} is already used by Service ${used.get(clash)}; pick another or remove clusterIP to get one allocated`,
        });
        byService.set(key, { vips: [], source: 'none' });
      } else {
        for (const ip of explicit) used.set(ip, key);
        byService.set(key, { vips: [...explicit], source: 'spec' });
      }
    } else needs.push(key);
  }

  // Keep previous allocations before handing out new ones, so a new service never takes an old address.
  const table: VipTable = {};
  const fresh: string[] = [];
  for (const key of needs) {
    const prev = previous[key];
    if (prev !== undefined && inRange(prev, range) && !used.has(prev)) {
      used.set(prev, key);
      table[key] = prev;
    } else fresh.push(key);
  }
  let next = range.first;
  fresh.sort();
  for (const key of fresh) {
    while (next <= range.last && used.has(intToIpv4(next))) next++;
    if (next > range.last) {
      issues.push({
        object: `Service ${key}`,
        message: `the VIP range ${rangeCidr} is exhausted; widen it or delete unused services`,
      });
      byService.set(key, { vips: [], source: 'none' });
      continue;
    }
    const ip = intToIpv4(next++);
    used.set(ip, key);
    table[key] = ip;
  }
  for (const key of needs) {
    const ip = table[key];
    if (ip !== undefined) byService.set(key, { vips: [ip], source: 'allocated' });
  }
  return { byService, table, issues };
}
