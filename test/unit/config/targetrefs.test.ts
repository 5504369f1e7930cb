// AuthorizationPolicy targetRefs attach only in the policy's own namespace, as in Istio: its CRD
// refuses any targetRefs[].namespace ("cross namespace referencing is not currently supported").
// A policy stored before that rule still never binds another namespace's target, and says so.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crossNamespaceTargetRefs, validateResource } from '../../../src/config/index.ts';
import { deriveRegistry } from '../../../src/control/registry/index.ts';

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
  test('a targetRef without a namespace is accepted, enforced by the waypoints it binds', () => {
    const result = validateResource(policy({ targetRefs: [ref('web')] }));
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    assert.equal(result.conditions[0]!.status, 'True');
    assert.equal(result.conditions[0]!.reason, 'Accepted');
    assert.match(result.conditions[0]!.message, /enforced at L7 by the waypoints/);
  });

  const refused: Array<[string, Record<string, unknown>, string]> = [
    ['another namespace', { targetRefs: [ref('web', 'bank')] }, 'spec.targetRefs[0].namespace'],
    [
      'its own namespace, written out',
      { targetRefs: [ref('web', 'tenant')] },
      'spec.targetRefs[0].namespace',
    ],
    ['the second of two', { targetRefs: [ref('web'), ref('db', 'bank')] }, 'spec.targetRefs[1].namespace'],
    ['targetRef (singular)', { targetRef: ref('web', 'bank') }, 'spec.targetRef.namespace'],
  ];
  for (const [name, spec, path] of refused) {
    test(`refused at apply: ${name}`, () => {
      const result = validateResource(policy(spec));
      assert.ok(!result.ok);
      const text = JSON.stringify(result.errors);
      assert.match(text, /cross namespace referencing is not currently supported/);
      assert.ok(text.includes(path.replace(/^spec\./, '')), `${path} in ${text}`);
    });
  }

  test('a policy stored before the rule binds nothing across namespaces, and the registry says so', () => {
    const stored = policy({ targetRefs: [ref('web'), ref('db', 'bank')] });
    assert.deepEqual(crossNamespaceTargetRefs(stored as never), ['targetRefs[1]']);
    const registry = deriveRegistry({ resources: [stored as never] });
    assert.ok(registry.issues.some((i) => /targetRefs\[1\].*own namespace/.test(i.message)));
  });

  test("an empty targetRef namespace is the policy's own, as in Istio", () => {
    const result = validateResource(
      policy({ targetRefs: [{ group: '', kind: 'Service', name: 'web', namespace: '' }] }),
    );
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    assert.deepEqual(crossNamespaceTargetRefs(result.resource as never), []);
    assert.equal(result.conditions[0]!.reason, 'Accepted');
  });
});
