// AuthorizationPolicy targetRefs bind only in the policy's own namespace, as in Istio; the status
// condition written at apply says when one (or all) of them name another namespace.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crossNamespaceTargetRefs, validateResource } from '../../../src/config/index.ts';

const policy = (spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'p', namespace: 'tenant' },
  spec: { rules: [{}], ...spec },
});
const ref = (name: string, namespace?: string) => ({
  group: '',
  kind: 'Service',
  name,
  ...(namespace ? { namespace } : {}),
});

describe('AuthorizationPolicy targetRefs across namespaces', () => {
  const cases: Array<[string, Record<string, unknown>, string[], string, RegExp]> = [
    ['own namespace, implied', { targetRefs: [ref('web')] }, [], 'True', /enforced by the waypoint/],
    [
      'own namespace, written',
      { targetRefs: [ref('web', 'tenant')] },
      [],
      'True',
      /enforced by the waypoint/,
    ],
    [
      'another namespace only: binds nothing',
      { targetRefs: [ref('web', 'bank')] },
      ['targetRefs[0]'],
      'False',
      /targetRefs\[0\]: cross namespace referencing is not currently supported.*binds nothing/,
    ],
    [
      'one of two in another namespace: that one is ignored',
      { targetRefs: [ref('web'), ref('db', 'bank')] },
      ['targetRefs[1]'],
      'True',
      /targetRefs\[1\].*those are ignored/,
    ],
    [
      'targetRef (singular) in another namespace',
      { targetRef: ref('web', 'bank') },
      ['targetRef'],
      'False',
      /^targetRef: cross namespace/,
    ],
  ];
  for (const [name, spec, foreign, status, message] of cases) {
    test(name, () => {
      const result = validateResource(policy(spec));
      assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
      assert.deepEqual(crossNamespaceTargetRefs(result.resource as never), foreign);
      assert.equal(result.conditions[0]!.status, status);
      assert.match(result.conditions[0]!.message, message);
      if (status === 'False') assert.equal(result.conditions[0]!.reason, 'TargetNotFound');
    });
  }
});
