// `ambit apply -n NS -f -` and `ambit delete -n NS -f -`, as Istio's docs use kubectl: documents without
// a namespace land in NS, a document in another namespace refuses the whole file before anything is
// sent, and without -n nothing changes. A child process against an in-process control plane on 127.0.0.1.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ambit } from '../helpers/control.ts';
import { adminFetch, startTestControl } from '../helpers/mesh.ts';

const NAMESPACES = `
apiVersion: v1
kind: Namespace
metadata: { name: foo }
---
apiVersion: v1
kind: Namespace
metadata: { name: bar }
`;

// As Istio's authorization walkthroughs write them: no metadata.namespace.
const POLICY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-nothing }
spec: {}
`;

const STRICT = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default }
spec: { mtls: { mode: STRICT } }
`;

test('ambit apply/delete -n put documents without a namespace into it, and refuse one from elsewhere', async (t) => {
  const cp = await startTestControl(t);
  const env = {
    AMBIT_SERVER: `http://${cp.adminAddress}`,
    AMBIT_TOKEN: (await cp.adminTokens.create({ role: 'cluster-admin' })).token,
  };
  const exists = async (ns: string, plural: string, name: string) =>
    (await adminFetch(cp, `/apis/security.istio.io/v1/namespaces/${ns}/${plural}/${name}`)).status === 200;

  // Cluster-scoped kinds ignore -n, as in kubectl.
  const created = await ambit(['apply', '-n', 'foo', '-f', '-'], env, NAMESPACES);
  assert.equal(created.code, 0, created.stderr);

  const applied = await ambit(['apply', '-n', 'foo', '-f', '-'], env, POLICY);
  assert.equal(applied.code, 0, applied.stderr);
  assert.match(applied.stdout, /authorizationpolicy\/allow-nothing created/);
  assert.ok(await exists('foo', 'authorizationpolicies', 'allow-nothing'));
  assert.ok(!(await exists('default', 'authorizationpolicies', 'allow-nothing')));

  // Without -n, a document without a namespace goes to `default`, as before.
  assert.equal((await ambit(['apply', '-f', '-'], env, POLICY)).code, 0);
  assert.ok(await exists('default', 'authorizationpolicies', 'allow-nothing'));

  // One document elsewhere: nothing of the file is applied, not even the documents before it.
  const refused = await ambit(
    ['apply', '-n', 'foo', '-f', '-'],
    env,
    `${STRICT}---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: deny, namespace: bar }\nspec: { action: DENY, rules: [{}] }\n`,
  );
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /AMBIT_ERR_CLI_NAMESPACE_MISMATCH/);
  assert.ok(
    refused.stderr.includes(
      `AuthorizationPolicy bar/deny (<stdin> (document 2, line 7)): metadata.namespace: the namespace from the provided object "bar" does not match the namespace "foo". You must pass '--namespace=bar' to perform this operation.`,
    ),
    refused.stderr,
  );
  assert.ok(!(await exists('foo', 'peerauthentications', 'default')));
  assert.ok(!(await exists('bar', 'authorizationpolicies', 'deny')));

  const badNs = await ambit(['apply', '-n', 'Foo_1', '-f', '-'], env, POLICY);
  assert.notEqual(badNs.code, 0);
  assert.match(badNs.stderr, /-n\/--namespace "Foo_1" must be a DNS-1123 label/);

  // delete -n: the same placement, so the policy applied into foo is the one deleted.
  const deleted = await ambit(['delete', '-n', 'foo', '-f', '-'], env, POLICY);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /authorizationpolicy\/allow-nothing deleted/);
  assert.ok(!(await exists('foo', 'authorizationpolicies', 'allow-nothing')));
  assert.ok(await exists('default', 'authorizationpolicies', 'allow-nothing'));

  const wrongDelete = await ambit(
    ['delete', '-n', 'bar', '-f', '-'],
    env,
    POLICY.replace('}', ', namespace: default }'),
  );
  assert.equal(wrongDelete.code, 1);
  assert.match(wrongDelete.stderr, /You must pass '--namespace=default' to perform this operation\./);
  assert.ok(await exists('default', 'authorizationpolicies', 'allow-nothing'));

  // KIND NAME without -n is still `default`.
  const byName = await ambit(['delete', 'ap', 'allow-nothing'], env);
  assert.equal(byName.code, 0, byName.stderr);
  assert.ok(!(await exists('default', 'authorizationpolicies', 'allow-nothing')));
});
