// Service VIP allocation from the VIP range. Stable: a service keeps the address it had in the
// previous table, and nothing ever takes it away — not an explicit clusterIP (which loses, and is
// reported), not a new service. New services take the lowest free address. A workload's address is
// never a VIP.

import { isIP } from 'node:net';
import type { ServiceResource } from '../../config/index.ts';
import { AmbitError } from '../../errors/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { canonicalAddress, explicitClusterIps } from './addresses.ts';
import type { RegistryIssue, VipTable } from './types.ts';

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

export interface Range {
  first: number;
  last: number;
}

/** Usable addresses of an IPv4 CIDR: the network and broadcast addresses are never handed out. */
export function parseVipRange(cidr: string): Range {
  const parts = cidr.split('/');
  const [addr = '', prefixText = ''] = parts;
  const prefix = Number(prefixText);
  if (parts.length !== 2 || isIP(addr) !== 4 || !/^\d+$/.test(prefixText) || prefix < 8 || prefix > 30) {
    throw new AmbitError(
      CONTROL_ERRORS.CONFIG_BAD_VIP_RANGE,
      `VIP range "${cidr}" must be an IPv4 CIDR with a prefix from /8 to /30, such as 198.19.0.0/16`,
    );
  }
  const size = 2 ** (32 - prefix);
  const network = ipv4ToInt(addr) - (ipv4ToInt(addr) % size);
  return { first: network + 1, last: network + size - 2 };
}

/** True for an IPv4 address inside the range's usable addresses. */
export function inVipRange(ip: string, range: Range): boolean {
  if (isIP(ip) !== 4) return false;
  const n = ipv4ToInt(ip);
  return n >= range.first && n <= range.last;
}

export interface VipAssignment {
  vips: string[];
  source: 'spec' | 'allocated' | 'none';
}

/**
 * What ServiceEntries ask of the range: `auto`, the keys of hosts that get an address allocated like a
 * Service's (Istio's auto-allocation); `fixed`, addresses their `spec.addresses` name (canonical address
 * → who), which are never handed out.
 */
export interface EntryVipClaims {
  auto: readonly string[];
  fixed: ReadonlyMap<string, string>;
  /** How issues name the object behind each `auto` key (`ServiceEntry namespace/name`). */
  objects?: ReadonlyMap<string, string>;
}

export interface VipResult {
  byService: Map<string, VipAssignment>;
  table: VipTable;
  issues: RegistryIssue[];
}

const byAge =
  (services: ReadonlyMap<string, ServiceResource>) =>
  (a: string, b: string): number => {
    const ta = services.get(a)?.metadata.creationTimestamp ?? '';
    const tb = services.get(b)?.metadata.creationTimestamp ?? '';
    return ta < tb ? -1 : ta > tb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  };

/**
 * Assign VIPs to `services` (keyed `namespace/name`, any order). Deterministic: the same inputs
 * always give the same table. In order: (1) a service present in `previous` keeps its address;
 * (2) explicit clusterIPs, oldest service first, each refused if an allocation, an older service or
 * a workload (`workloadAddresses`, canonical address → who) has it; (3) new services take the
 * lowest free address that is no workload's.
 */
export function allocateVips(
  services: ReadonlyMap<string, ServiceResource>,
  previous: VipTable,
  rangeCidr: string,
  workloadAddresses: ReadonlyMap<string, string> = new Map(),
  entries: EntryVipClaims = { auto: [], fixed: new Map() },
): VipResult {
  const range = parseVipRange(rangeCidr);
  const keys = [...services.keys()].sort(byAge(services));
  const byService = new Map<string, VipAssignment>();
  const issues: RegistryIssue[] = [];
  const used = new Map<string, string>();
  const explicit = new Map<string, string[]>();
  const needs: string[] = [];

  for (const key of keys) {
    const svc = services.get(key)!;
    const ips = explicitClusterIps(svc).map((c) => canonicalAddress(c.ip));
    if (
      svc.spec.type === 'ExternalName' ||
      svc.spec.clusterIP === 'None' ||
      svc.spec.clusterIPs?.[0] === 'None'
    )
      byService.set(key, { vips: [], source: 'none' });
    else if (ips.length > 0) explicit.set(key, ips);
    else needs.push(key);
  }

  // (1) Addresses handed out before stay where they are: an allocation is never moved for a newcomer.
  needs.push(...entries.auto);
  const objectOf = (key: string) => entries.objects?.get(key) ?? `Service ${key}`;
  const table: VipTable = {};
  const fresh: string[] = [];
  const taken = (ip: string) => used.has(ip) || workloadAddresses.has(ip) || entries.fixed.has(ip);
  for (const key of needs) {
    const prev = previous[key];
    if (prev !== undefined && inVipRange(prev, range) && !used.has(prev)) {
      used.set(prev, key);
      table[key] = prev;
    } else fresh.push(key);
  }

  // (2) Explicit clusterIPs, oldest first. One that is taken loses; the holder keeps it.
  for (const [key, ips] of explicit) {
    const clash = ips.find((ip) => used.has(ip) || workloadAddresses.has(ip));
    if (clash !== undefined) {
      const holder = used.has(clash) ? objectOf(used.get(clash)!) : workloadAddresses.get(clash);
      issues.push({
        object: `Service ${key}`,
        message: `clusterIP ${clash} is already allocated to ${holder}, which keeps it; this service gets no VIP until you pick another or remove clusterIP to get one allocated`,
      });
      byService.set(key, { vips: [], source: 'none' });
      continue;
    }
    for (const ip of ips) used.set(ip, key);
    byService.set(key, { vips: ips, source: 'spec' });
  }

  // (3) New services: the lowest address nobody holds.
  let next = range.first;
  fresh.sort();
  for (const key of fresh) {
    while (next <= range.last && taken(intToIpv4(next))) next++;
    if (next > range.last) {
      issues.push({
        object: objectOf(key),
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
    if (ip === undefined) continue;
    // A workload that already had this address (a store written before addresses were checked)
    // wins at every ztunnel; the service keeps the allocation in the table but serves no VIP.
    const holder = workloadAddresses.get(ip);
    if (holder !== undefined) {
      issues.push({
        object: objectOf(key),
        message: `its VIP ${ip} is also the address of ${holder}; the workload wins, so the service has no VIP until that workload is gone`,
      });
      byService.set(key, { vips: [], source: 'none' });
    } else byService.set(key, { vips: [ip], source: 'allocated' });
  }
  return { byService, table, issues };
}
