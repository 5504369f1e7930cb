// evaluateL4: the ztunnel's authorization decision for one connection, in Istio's order:
// CUSTOM → (STRICT mTLS without identity) → DENY → no ALLOW policies: allow → any ALLOW matches: allow → deny.

import { BlockList, isIP } from 'node:net';
import type {
  L4Authorization,
  L4Condition,
  L4Connection,
  L4Decision,
  L4Operation,
  L4Rule,
  L4Source,
} from './l4-types.ts';

/** Node reports IPv4 peers on dual-stack sockets as `::ffff:a.b.c.d`; policy is written in IPv4. */
function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

const blockCache = new Map<string, BlockList | null>();

function cidrBlock(cidr: string): BlockList | null {
  let block = blockCache.get(cidr);
  if (block !== undefined) return block;
  const [addr = '', prefix] = cidr.split('/');
  const family = isIP(addr);
  if (family === 0) block = null;
  else {
    block = new BlockList();
    const type = family === 4 ? 'ipv4' : 'ipv6';
    block.addSubnet(addr, prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix), type);
  }
  if (blockCache.size > 10_000) blockCache.clear();
  blockCache.set(cidr, block);
  return block;
}

/** True when `ip` is inside `cidr` (or equals it, for a bare address). */
export function ipInCidr(ip: string, cidr: string): boolean {
  const addr = plainIp(ip);
  const family = isIP(addr);
  const block = cidrBlock(cidr);
  if (family === 0 || !block) return false;
  return block.check(addr, family === 4 ? 'ipv4' : 'ipv6');
}

/** Istio string match: exact, `*` (any non-empty value), `*suffix`, `prefix*`. */
export function stringMatches(pattern: string, value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return value.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  return pattern === value;
}

interface Peer {
  ip: string;
  /** Istio form, `cluster.local/ns/a/sa/b`. */
  principal: string | undefined;
  namespace: string | undefined;
  serviceAccount: string | undefined;
}

function peerOf(conn: L4Connection): Peer {
  const principal = conn.source.principal?.replace(/^spiffe:\/\//, '') || undefined;
  const m = principal ? /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal) : null;
  return {
    ip: conn.source.ip,
    principal,
    namespace: m?.[1],
    serviceAccount: m ? `${m[1]}/${m[2]}` : undefined,
  };
}

/** `positive` must match one (if set); `negative` must match none (if set). */
function field(
  positive: readonly string[] | undefined,
  negative: readonly string[] | undefined,
  test: (pattern: string) => boolean,
): boolean {
  if (positive !== undefined && !positive.some(test)) return false;
  if (negative?.some(test)) return false;
  return true;
}

function sourceMatches(s: L4Source, peer: Peer): boolean {
  return (
    field(s.principals, s.notPrincipals, (p) => stringMatches(p, peer.principal)) &&
    field(s.namespaces, s.notNamespaces, (p) => stringMatches(p, peer.namespace)) &&
    field(s.serviceAccounts, s.notServiceAccounts, (p) => p === peer.serviceAccount) &&
    field(s.ipBlocks, s.notIpBlocks, (c) => ipInCidr(peer.ip, c))
  );
}

function operationMatches(o: L4Operation, port: number): boolean {
  return field(o.ports?.map(String), o.notPorts?.map(String), (p) => Number(p) === port);
}

function conditionMatches(c: L4Condition, peer: Peer, conn: L4Connection): boolean {
  let test: (v: string) => boolean;
  switch (c.key) {
    case 'source.ip':
      test = (v) => ipInCidr(peer.ip, v);
      break;
    case 'source.namespace':
      test = (v) => stringMatches(v, peer.namespace);
      break;
    case 'source.principal':
      test = (v) => stringMatches(v, peer.principal);
      break;
    case 'destination.ip':
      test = (v) => ipInCidr(conn.destination.ip, v);
      break;
    case 'destination.port':
      test = (v) => Number(v) === conn.destination.port;
      break;
    default:
      // A key the L4 form does not know can never be satisfied here: fail closed.
      return false;
  }
  return field(c.values, c.notValues, test);
}

function ruleMatches(rule: L4Rule, peer: Peer, conn: L4Connection): boolean {
  if (rule.from !== undefined && !rule.from.some((s) => sourceMatches(s, peer))) return false;
  if (rule.to !== undefined && !rule.to.some((o) => operationMatches(o, conn.destination.port))) return false;
  return (rule.when ?? []).every((c) => conditionMatches(c, peer, conn));
}

/** True when any of the policy's rules matches the connection. */
export function policyMatches(policy: L4Authorization, conn: L4Connection): boolean {
  const peer = peerOf(conn);
  return policy.rules.some((r) => ruleMatches(r, peer, conn));
}

const id = (p: L4Authorization): string => `${p.namespace}/${p.name}`;

/**
 * Decide one connection against the policies that bind its destination (global, namespace and
 * selector scopes together). Dry-run policies are reported in `dryRun` and never decide.
 */
export function evaluateL4(policies: readonly L4Authorization[], conn: L4Connection): L4Decision {
  const live = policies.filter((p) => !p.dryRun);
  const audit = live.filter((p) => p.action === 'AUDIT' && policyMatches(p, conn)).map(id);
  const dryRun = dryRunHits(
    policies.filter((p) => p.dryRun),
    conn,
  );
  const decide = (allow: boolean, reason: string, policy?: L4Authorization): L4Decision => ({
    allow,
    reason,
    ...(policy ? { policy: id(policy) } : {}),
    audit,
    dryRun,
  });

  const custom = live.find((p) => p.action === 'CUSTOM' && policyMatches(p, conn));
  if (custom) {
    return decide(
      false,
      `CUSTOM policy ${id(custom)} matched and ztunnel has no external authorizer, so it denies`,
      custom,
    );
  }
  if (conn.mtlsMode === 'STRICT' && !conn.source.principal) {
    return decide(
      false,
      'PeerAuthentication is STRICT and the connection carries no peer identity (plaintext)',
    );
  }
  const deny = live.find((p) => p.action === 'DENY' && policyMatches(p, conn));
  if (deny) return decide(false, `denied by DENY policy ${id(deny)}`, deny);
  const allows = live.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return decide(true, 'no ALLOW policy applies to the destination');
  const allow = allows.find((p) => policyMatches(p, conn));
  if (allow) return decide(true, `allowed by ALLOW policy ${id(allow)}`, allow);
  return decide(false, `no ALLOW policy matched (${allows.map(id).join(', ')} apply to the destination)`);
}

function dryRunHits(dry: readonly L4Authorization[], conn: L4Connection): string[] {
  const hits = dry
    .filter((p) => (p.action === 'DENY' || p.action === 'CUSTOM') && policyMatches(p, conn))
    .map(id);
  const allows = dry.filter((p) => p.action === 'ALLOW');
  if (allows.length > 0 && !allows.some((p) => policyMatches(p, conn))) hits.push(...allows.map(id));
  return hits;
}
