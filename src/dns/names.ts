// Which names a server answers itself and with what: a table of record sets (exact names and `*.`
// wildcards) and the zones it is authoritative for. Pure and synchronous: a lookup is two or three
// map probes, so queries answered from the table never wait.

import { isIPv4, isIPv6 } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { DNS_ERRORS } from './errors.ts';

/** One name's addresses. `name` is lower-case, no trailing dot; a wildcard is `*.example.com` (matches any name with at least one more label, not example.com itself; the most specific wildcard wins; an exact name beats a wildcard). */
export interface DnsRecordSet {
  name: string;
  ipv4: readonly string[];
  ipv6: readonly string[];
}

export type Lookup =
  | { kind: 'answer'; name: string; addresses: string[]; type: 'A' | 'AAAA' }
  // `zone`: the authoritative zone the name is in, whose SOA a negative answer carries (RFC 2308).
  | { kind: 'nodata'; zone?: string }
  | { kind: 'nxdomain'; zone: string }
  | { kind: 'unknown' };

const MAX_NAME = 253;
const MAX_LABEL = 63;
// Lenient enough for service names (`_http._tcp`) and wildcard questions; anything else (spaces,
// non-ASCII, control bytes) is a malformed query, not a name anyone registered.
const LABEL = /^[A-Za-z0-9_*-]+$/;

/** Lower-case, without the trailing dot: the form the table keys on. */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Why `name` (as asked, trailing dot allowed; `.` is the root) is not a valid question name, or undefined. */
export function invalidNameReason(name: string): string | undefined {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n === '') return name === '.' || name === '' ? undefined : 'empty name';
  if (n.length > MAX_NAME) return `name longer than ${MAX_NAME} characters`;
  for (const label of n.split('.')) {
    if (label === '') return 'empty label';
    if (label.length > MAX_LABEL) return `label longer than ${MAX_LABEL} characters`;
    if (!LABEL.test(label))
      return `label "${label}" has characters other than letters, digits, '-', '_' or '*'`;
  }
  return undefined;
}

export interface NameTableOptions {
  /** Zones the table speaks for: a name inside one that the table does not know is NXDOMAIN, not forwarded. */
  authoritativeZones?: readonly string[];
  /** Leave out a bad record set and report it here, instead of throwing. */
  skipInvalid?: (err: AmbitError) => void;
}

interface Entry {
  ipv4: string[];
  ipv6: string[];
}

function badRecord(name: string, why: string): AmbitError {
  return new AmbitError(DNS_ERRORS.BAD_RECORD, `DNS record set "${name}": ${why}`, { detail: { name } });
}

/** Checks a record set's name: a DNS name, or `*.` followed by one; `*` nowhere else. */
function recordName(raw: string): string {
  const name = normalizeName(raw);
  const base = name.startsWith('*.') ? name.slice(2) : name;
  const why = base === '' ? 'empty name' : invalidNameReason(base);
  if (why !== undefined) throw badRecord(raw, why);
  if (base.includes('*')) throw badRecord(raw, "a wildcard is '*.' before a name, and only there");
  return name;
}

function addresses(name: string, list: readonly string[], family: 4 | 6): string[] {
  const ok = family === 4 ? isIPv4 : isIPv6;
  for (const a of list) {
    if (typeof a !== 'string' || !ok(a)) throw badRecord(name, `"${a}" is not an IPv${family} address`);
  }
  return [...list];
}

function merge(into: Entry, from: Entry): void {
  for (const a of from.ipv4) if (!into.ipv4.includes(a)) into.ipv4.push(a);
  for (const a of from.ipv6) if (!into.ipv6.includes(a)) into.ipv6.push(a);
}

export class NameTable {
  private readonly exact = new Map<string, Entry>();
  /** Keyed by the wildcard's parent: `*.example.com` is under `example.com`. */
  private readonly wildcards = new Map<string, Entry>();
  /** Zone suffixes, each with a leading dot, and the zone apexes. */
  private readonly zoneSuffixes: string[] = [];
  private readonly zones = new Set<string>();
  /** Names above a record inside a zone (`svc.cluster.local`): they exist, so they are NODATA, not NXDOMAIN. */
  private readonly between = new Set<string>();

  /**
   * Throws AMBIT_ERR_DNS_BAD_ZONE for a bad zone, and AMBIT_ERR_DNS_BAD_RECORD for a bad record set
   * unless `skipInvalid` is given: then that record set is left out and handed to it (a proxy building
   * its table from config would rather answer every other name than none).
   */
  constructor(records: Iterable<DnsRecordSet>, opts?: NameTableOptions) {
    for (const zone of opts?.authoritativeZones ?? []) {
      const z = normalizeName(zone);
      const why = z === '' ? 'empty name' : invalidNameReason(z);
      if (why !== undefined || z.includes('*')) {
        throw new AmbitError(DNS_ERRORS.BAD_ZONE, `DNS zone "${zone}": ${why ?? 'a zone has no wildcard'}`, {
          detail: { zone },
        });
      }
      this.zones.add(z);
      this.zoneSuffixes.push(`.${z}`);
    }
    for (const r of records) {
      try {
        this.add(r);
      } catch (err) {
        if (opts?.skipInvalid && err instanceof AmbitError) opts.skipInvalid(err);
        else throw err;
      }
    }
  }

  private add(r: DnsRecordSet): void {
    const name = recordName(r.name);
    const entry = { ipv4: addresses(r.name, r.ipv4, 4), ipv6: addresses(r.name, r.ipv6, 6) };
    const wild = name.startsWith('*.');
    const key = wild ? name.slice(2) : name;
    const map = wild ? this.wildcards : this.exact;
    const had = map.get(key);
    if (had) merge(had, entry);
    else map.set(key, entry);
    if (this.zones.size > 0) this.markAncestors(wild ? name : key);
  }

  get size(): number {
    return this.exact.size + this.wildcards.size;
  }

  /** name as it came in the question (any case, with or without trailing dot). Type other than A/AAAA for a known name → nodata. */
  lookup(name: string, type: string): Lookup {
    const n = normalizeName(name);
    const entry = this.exact.get(n) ?? this.wildcardFor(n);
    if (entry) {
      const t = type.toUpperCase();
      const list = t === 'A' ? entry.ipv4 : t === 'AAAA' ? entry.ipv6 : undefined;
      if (list === undefined || list.length === 0) {
        const zone = this.zoneOf(n);
        return zone === undefined ? { kind: 'nodata' } : { kind: 'nodata', zone };
      }
      return { kind: 'answer', name: n, addresses: list.slice(), type: t as 'A' | 'AAAA' };
    }
    const zone = this.zoneOf(n);
    if (zone === undefined) return { kind: 'unknown' };
    return this.zones.has(n) || this.between.has(n) ? { kind: 'nodata', zone } : { kind: 'nxdomain', zone };
  }

  /** The most specific wildcard covering `n`: its nearest parent that has one. */
  private wildcardFor(n: string): Entry | undefined {
    if (this.wildcards.size === 0) return undefined;
    for (let dot = n.indexOf('.'); dot !== -1; dot = n.indexOf('.', dot + 1)) {
      const hit = this.wildcards.get(n.slice(dot + 1));
      if (hit) return hit;
    }
    return undefined;
  }

  /** The authoritative zone `n` is in (its apex), or undefined. */
  private zoneOf(n: string): string | undefined {
    if (this.zones.has(n)) return n;
    for (const suffix of this.zoneSuffixes) if (n.endsWith(suffix)) return suffix.slice(1);
    return undefined;
  }

  private markAncestors(name: string): void {
    for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
      this.between.add(name.slice(dot + 1));
    }
  }
}
