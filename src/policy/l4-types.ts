// The L4 form of an AuthorizationPolicy, the one ztunnels receive and evaluate: only what can be
// decided from a connection (identities, addresses, ports). Plain JSON, so it travels on the stream.
// The schema is the one definition: the control plane produces this type and proxies parse it with
// this schema (unknown fields dropped, so a newer control plane can add fields to older proxies).

import { z } from 'zod';

const port = z.number().int().min(1).max(65535);
const stringList = z.array(z.string()).optional();

export const l4Action = z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']);
export type L4Action = z.infer<typeof l4Action>;

/** Where a policy applies: the whole mesh (root namespace), one namespace, or selected workloads. */
export const policyScope = z.enum(['global', 'namespace', 'workload']);
export type PolicyScope = z.infer<typeof policyScope>;

export const mtlsMode = z.enum(['STRICT', 'PERMISSIVE']);
export type MtlsMode = z.infer<typeof mtlsMode>;

export const l4Source = z.object({
  principals: stringList,
  notPrincipals: stringList,
  namespaces: stringList,
  notNamespaces: stringList,
  /** `namespace/serviceaccount`. */
  serviceAccounts: stringList,
  notServiceAccounts: stringList,
  ipBlocks: stringList,
  notIpBlocks: stringList,
});
export type L4Source = z.infer<typeof l4Source>;

export const l4Operation = z.object({ ports: z.array(port).optional(), notPorts: z.array(port).optional() });
export type L4Operation = z.infer<typeof l4Operation>;

export const l4WhenKey = z.enum([
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
]);
export type L4WhenKey = z.infer<typeof l4WhenKey>;

export const l4Condition = z.object({ key: l4WhenKey, values: stringList, notValues: stringList });
export type L4Condition = z.infer<typeof l4Condition>;

/** A rule matches when any `from` matches, any `to` matches and every `when` matches; absent parts match all. */
export const l4Rule = z.object({
  from: z.array(l4Source).optional(),
  to: z.array(l4Operation).optional(),
  when: z.array(l4Condition).optional(),
});
export type L4Rule = z.infer<typeof l4Rule>;

export const l4Authorization = z.object({
  name: z.string().min(1),
  namespace: z.string().min(1),
  scope: policyScope,
  action: l4Action,
  /** `istio.io/dry-run: "true"`: evaluated and reported, never enforced. */
  dryRun: z.boolean().default(false),
  /** Rules are ORed. No rules matches nothing (an ALLOW policy with no rules allows nothing). */
  rules: z.array(l4Rule),
});
export type L4Authorization = z.infer<typeof l4Authorization>;

/** What a destination ztunnel knows about one inbound connection. */
export interface L4Connection {
  source: {
    ip: string;
    /** The peer's SPIFFE ID (`spiffe://cluster.local/ns/a/sa/b`) or Istio form; absent for plaintext. */
    principal?: string;
  };
  destination: { ip: string; port: number };
  /** The destination's PeerAuthentication mode on this port; STRICT denies connections without identity. */
  mtlsMode?: MtlsMode;
}

export interface L4Decision {
  allow: boolean;
  /** Why, in words an operator can act on. */
  reason: string;
  /** `namespace/name` of the policy that decided, when one did. */
  policy?: string;
  /** AUDIT policies that matched (`namespace/name`). */
  audit: string[];
  /** Dry-run policies that would have denied (DENY/CUSTOM matched, or ALLOW did not allow). */
  dryRun: string[];
}
