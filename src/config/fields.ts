// Field schemas shared by every kind: Kubernetes names and labels, addresses, ports, durations,
// principals, selectors and targetRefs. Each carries the message an operator sees when it fails.

import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { TARGET_GROUPS, targetGroupMatches } from './targets.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?=[a-z0-9]))*$/;
const DURATION = /^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** A label key: optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters. */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0 && !isDns1123Subdomain(key.slice(0, slash))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && LABEL_NAME.test(value));
}

/** True for an IPv4 or IPv6 address in its plain textual form. */
export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** True for `addr/prefix` with a prefix that fits the family, or a bare address (a /32 or /128). */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isIpAddress(s);
  const family = isIP(s.slice(0, slash));
  const prefix = s.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Milliseconds in a duration written as Go and Gateway API write them: `1s`, `500ms`, `1h30m`, `0.5s`. */
export function parseDuration(s: string): number | undefined {
  if (!DURATION.test(s)) return undefined;
  const scale: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1000,
    ms: 1,
    us: 1e-3,
    µs: 1e-3,
    ns: 1e-6,
  };
  let total = 0;
  for (const [, amount, unit] of s.matchAll(DURATION_PART)) total += Number(amount) * scale[unit!]!;
  return total;
}

/**
 * An Istio principal or other identity string match: exact, `*` (any), `*suffix` or `prefix*`.
 * A `*` anywhere else is refused, as Istio refuses it.
 */
export function isStringMatch(s: string): boolean {
  if (s === '' || s === '*') return s === '*';
  const inner = s.slice(1, -1);
  return !inner.includes('*');
}

export const dns1123Label = z
  .string()
  .refine(
    isDns1123Label,
    'must be a DNS-1123 label: lower-case letters, digits and "-", at most 63 characters',
  );

export const dns1123Subdomain = z
  .string()
  .refine(
    isDns1123Subdomain,
    'must be a DNS-1123 subdomain: lower-case letters, digits, "-" and ".", at most 253 characters',
  );

export const dns1035Label = z
  .string()
  .refine(
    (s) => s.length <= 63 && DNS1035_LABEL.test(s),
    'must be a DNS-1035 label: start with a lower-case letter, then lower-case letters, digits and "-"',
  );

export const labelMap = z.record(z.string(), z.string()).superRefine((labels, ctx) => {
  for (const [key, value] of Object.entries(labels)) {
    if (!isLabelKey(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message:
          'invalid label key: an optional DNS subdomain prefix and "/", then at most 63 characters [A-Za-z0-9-_.]',
      });
    } else if (!isLabelValue(value)) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message:
          'invalid label value: at most 63 characters [A-Za-z0-9-_.], starting and ending alphanumeric',
      });
    }
  }
});

/** Kubernetes' limit on the total size of an object's annotations (keys and values, in bytes). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Annotations as Kubernetes validates them: qualified-name keys, at most 256 KiB in total. */
export const annotationMap = z.record(z.string(), z.string()).superRefine((annotations, ctx) => {
  let total = 0;
  for (const [key, value] of Object.entries(annotations)) {
    total += Buffer.byteLength(key) + Buffer.byteLength(value);
    // Kubernetes checks the lower-cased key, so upper case is allowed in annotation keys.
    if (!isLabelKey(key.toLowerCase())) {
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message:
          'invalid annotation key: an optional DNS subdomain prefix and "/", then at most 63 characters [A-Za-z0-9-_.]',
      });
    }
  }
  if (total > MAX_ANNOTATIONS_BYTES) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `Too long: must have at most ${MAX_ANNOTATIONS_BYTES} bytes`,
    });
  }
});

export const ipAddress = z.string().refine(isIpAddress, 'must be an IPv4 or IPv6 address');

export const cidr = z.string().refine(isCidr, 'must be an IP address or a CIDR block such as 198.18.0.0/15');

/**
 * Addresses no workload can own: they name every host, a link or a group, not one peer. Loopback is
 * not among them (workloads on one host, with explicit capture, live on 127.0.0.0/8 aliases); a mesh
 * reserves it, as its infrastructure ranges, with `ambit control --reserved-cidrs`.
 */
const NOT_A_WORKLOAD = (() => {
  const list = new BlockList();
  list.addSubnet('0.0.0.0', 8, 'ipv4'); // "this network", including the unspecified address
  list.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local
  list.addSubnet('224.0.0.0', 4, 'ipv4'); // multicast
  list.addAddress('255.255.255.255', 'ipv4'); // broadcast
  list.addAddress('::', 'ipv6');
  list.addSubnet('fe80::', 10, 'ipv6');
  list.addSubnet('ff00::', 8, 'ipv6');
  return list;
})();

/** True for an address a workload may own (a unicast address of one host). */
export function isWorkloadAddress(s: string): boolean {
  const family = isIP(s);
  if (family === 0) return false;
  // An IPv4-mapped IPv6 address is the IPv4 address.
  const mapped = family === 6 ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s)?.[1] : undefined;
  if (mapped !== undefined) return !NOT_A_WORKLOAD.check(mapped, 'ipv4');
  return !NOT_A_WORKLOAD.check(s, family === 4 ? 'ipv4' : 'ipv6');
}

/** A membership test for a list of CIDRs (or bare addresses), as `isCidr` accepts them; others are skipped. */
export function cidrMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const c of cidrs) {
    if (!isCidr(c)) continue;
    const [addr = '', prefix] = c.split('/');
    const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(prefix), type);
  }
  return (ip) => {
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}

export const workloadAddress = z
  .string()
  .refine(isIpAddress, 'must be an IPv4 or IPv6 address')
  .refine(
    (s) => !isIpAddress(s) || isWorkloadAddress(s),
    'must be a unicast address of one host: not unspecified, link-local, multicast or broadcast',
  );

export const portNumber = z
  .number({ error: 'must be a port number from 1 to 65535' })
  .int('must be a port number from 1 to 65535')
  .min(1, 'must be a port number from 1 to 65535')
  .max(65535, 'must be a port number from 1 to 65535');

export const portName = z
  .string()
  .refine(
    (s) => s.length <= 15 && IANA_SVC_NAME.test(s),
    'must be a port name: at most 15 lower-case letters, digits and "-", with at least one letter',
  );

/** A port given by number or by the name of a container / workload port (Kubernetes `targetPort`). */
export const portNumberOrName = z.union([portNumber, portName], {
  error: 'must be a port number from 1 to 65535 or a port name',
});

/** A port written as a string, as AuthorizationPolicy `operation.ports` writes it. */
export const portString = z
  .string()
  .refine(
    (s) => /^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535,
    'must be a port number from 1 to 65535 written as a string, such as "8080"',
  );

export const duration = z
  .string()
  .refine(
    (s) => parseDuration(s) !== undefined,
    'must be a duration such as "500ms", "1s", "1m30s" (units h, m, s, ms, us, ns)',
  );

export const percentage = z.number().min(0, 'must be from 0 to 100').max(100, 'must be from 0 to 100');

export const nonNegativeInt = z.number().int('must be a whole number').min(0, 'must not be negative');

export const positiveInt = z.number().int('must be a whole number').min(1, 'must be at least 1');

/** An Istio identity match (`cluster.local/ns/foo/sa/bar`, `*`, `*suffix`, `prefix*`). */
export const stringMatch = z
  .string()
  .refine(isStringMatch, 'must be an exact value, "*", "*suffix" or "prefix*" ("*" only at one end)');

export const principal = stringMatch.refine(
  (s) => !s.startsWith('spiffe://'),
  'write principals as Istio does, without "spiffe://" (for example cluster.local/ns/foo/sa/bar)',
);

/** `namespace/serviceaccount`, as Istio's `source.serviceAccounts` writes it. */
export const serviceAccountRef = z.string().refine((s) => {
  const parts = s.split('/');
  return parts.length === 2 && isDns1123Label(parts[0]!) && isDns1123Subdomain(parts[1]!);
}, 'must be "<namespace>/<serviceaccount>"');

/** Istio's workload selector: `selector: { matchLabels: {...} }`. */
export const workloadSelector = z.object({ matchLabels: labelMap.optional() }).strict();

/**
 * Istio's single-namespace policy target (`targetRef` / `targetRefs`). Its CRD refuses any
 * `namespace` (rule `self.size() == 0`): a policy may only attach to targets in its own namespace,
 * so a tenant can never add rules to another team's service.
 */
export const policyTargetRef = z
  .object({
    group: z.string().optional(),
    kind: z.string().min(1, 'kind is required, for example Service or Gateway'),
    name: dns1123Subdomain,
    namespace: z
      .string()
      .refine((ns) => ns.length === 0, 'cross namespace referencing is not currently supported')
      .optional(),
  })
  .strict();

/**
 * Istio's rules for where a policy attaches: `selector` or `targetRef(s)`, not both; `targetRef` or
 * `targetRefs`, not both; each target one of `kinds`, in its kind's group when a group is written.
 */
export function refinePolicyAttachment(
  spec: { selector?: unknown; targetRef?: PolicyTargetRef; targetRefs?: readonly PolicyTargetRef[] },
  ctx: z.RefinementCtx,
  kinds: readonly string[],
): void {
  const targeted = spec.targetRef !== undefined || (spec.targetRefs?.length ?? 0) > 0;
  if (targeted && spec.selector !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['selector'],
      message: 'cannot be set together with targetRefs; use one or the other',
    });
  }
  if (spec.targetRef !== undefined && spec.targetRefs !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['targetRef'],
      message: 'cannot be set together with targetRefs; move it into targetRefs',
    });
  }
  const allowed = `${kinds.slice(0, -1).join(', ')}${kinds.length > 1 ? ' or ' : ''}${kinds.at(-1)}`;
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : []);
  refs.forEach((ref, i) => {
    const at = spec.targetRefs ? ['targetRefs', i] : ['targetRef'];
    if (!kinds.includes(ref.kind)) {
      ctx.addIssue({ code: 'custom', path: [...at, 'kind'], message: `must be ${allowed}` });
    } else if (!targetGroupMatches(ref)) {
      const group = TARGET_GROUPS[ref.kind];
      ctx.addIssue({
        code: 'custom',
        path: [...at, 'group'],
        message: `must be "${group === 'core' ? '' : group}" for kind ${ref.kind} (or left out)`,
      });
    }
  });
}

/** Gateway API ParentReference. */
export const parentRef = z
  .object({
    group: z.string().optional(),
    kind: z.string().optional(),
    namespace: dns1123Label.optional(),
    name: dns1123Subdomain,
    sectionName: z.string().optional(),
    port: portNumber.optional(),
  })
  .strict();

export type WorkloadSelector = z.infer<typeof workloadSelector>;
export type PolicyTargetRef = z.infer<typeof policyTargetRef>;
export type ParentRef = z.infer<typeof parentRef>;
