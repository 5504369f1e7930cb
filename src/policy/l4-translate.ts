// Translates an AuthorizationPolicy resource into its L4 form for ztunnels, failing closed: an
// ALLOW rule with L7 parts is dropped (matches nothing), a DENY/CUSTOM rule loses its L7 parts.

import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicyResource,
  AuthorizationRule,
  AuthorizationSource,
} from '../config/index.ts';
import { L4_WHEN_KEYS, l7FieldsOfRule } from '../config/index.ts';
import type {
  L4Authorization,
  L4Condition,
  L4Operation,
  L4Rule,
  L4Source,
  L4WhenKey,
  PolicyScope,
} from './l4-types.ts';

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
] as const;

function l4Source(source: AuthorizationSource): L4Source {
  const out: L4Source = {};
  for (const f of SOURCE_FIELDS) if (source[f] !== undefined) out[f] = [...source[f]];
  return out;
}

function l4Operation(op: AuthorizationOperation): L4Operation {
  const out: L4Operation = {};
  if (op.ports !== undefined) out.ports = op.ports.map(Number);
  if (op.notPorts !== undefined) out.notPorts = op.notPorts.map(Number);
  return out;
}

function l4Conditions(when: readonly AuthorizationCondition[]): L4Condition[] {
  return when
    .filter((c) => L4_WHEN_KEYS.has(c.key))
    .map((c) => ({
      key: c.key as L4WhenKey,
      ...(c.values === undefined ? {} : { values: [...c.values] }),
      ...(c.notValues === undefined ? {} : { notValues: [...c.notValues] }),
    }));
}

/** The L4 parts of a rule; L7 parts are removed, which widens the rule. */
function stripL7(rule: AuthorizationRule): L4Rule {
  const out: L4Rule = {};
  if (rule.from !== undefined) out.from = rule.from.map((f) => l4Source(f.source));
  if (rule.to !== undefined) out.to = rule.to.map((t) => l4Operation(t.operation));
  if (rule.when !== undefined) {
    const when = l4Conditions(rule.when);
    if (when.length > 0) out.when = when;
  }
  return out;
}

/**
 * The L4 form of `policy` at the given scope. The result is never looser than the policy:
 * ALLOW rules with L7 fields are dropped; DENY and CUSTOM rules keep only their L4 parts.
 */
export function toL4Authorization(policy: AuthorizationPolicyResource, scope: PolicyScope): L4Authorization {
  const action = policy.spec.action ?? 'ALLOW';
  const rules = policy.spec.rules ?? [];
  const kept =
    action === 'ALLOW' || action === 'AUDIT'
      ? rules.filter((r) => l7FieldsOfRule(r).length === 0).map(stripL7)
      : rules.map(stripL7);
  return {
    name: policy.metadata.name,
    namespace: policy.metadata.namespace ?? 'default',
    scope,
    action,
    dryRun: policy.metadata.annotations?.['istio.io/dry-run'] === 'true',
    rules: kept,
  };
}
