// The L4 form of an AuthorizationPolicy, the one ztunnels receive and evaluate: only what can be
// decided from a connection (identities, addresses, ports). Plain JSON, so it travels on the stream.

export type L4Action = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** Where a policy applies: the whole mesh (root namespace), one namespace, or selected workloads. */
export type PolicyScope = 'global' | 'namespace' | 'workload';

export type MtlsMode = 'STRICT' | 'PERMISSIVE';

export interface L4Source {
  principals?: string[];
  notPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  /** `namespace/serviceaccount`. */
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
}

export interface L4Operation {
  ports?: number[];
  notPorts?: number[];
}

export type L4WhenKey =
  | 'source.ip'
  | 'source.namespace'
  | 'source.principal'
  | 'destination.ip'
  | 'destination.port';

export interface L4Condition {
  key: L4WhenKey;
  values?: string[];
  notValues?: string[];
}

/** A rule matches when any `from` matches, any `to` matches and every `when` matches; absent parts match all. */
export interface L4Rule {
  from?: L4Source[];
  to?: L4Operation[];
  when?: L4Condition[];
}

export interface L4Authorization {
  name: string;
  namespace: string;
  scope: PolicyScope;
  action: L4Action;
  /** `istio.io/dry-run: "true"`: evaluated and reported, never enforced. */
  dryRun: boolean;
  /** Rules are ORed. No rules matches nothing (an ALLOW policy with no rules allows nothing). */
  rules: L4Rule[];
}

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
