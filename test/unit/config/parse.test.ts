import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertValid, CONFIG_INVALID, formatIssue, parseManifests } from '../../../src/config/index.ts';
import { hasCode } from '../../../src/errors/index.ts';

const GOOD = `
apiVersion: v1
kind: Namespace
metadata:
  name: app
  labels:
    istio.io/dataplane-mode: ambient
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: app }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;

describe('config: parseManifests', () => {
  it('parses multi-document YAML into typed resources in order', () => {
    const { resources, errors } = parseManifests(GOOD, 'good.yaml');
    assert.deepEqual(errors, []);
    assert.deepEqual(
      resources.map((r) => r.kind),
      ['Namespace', 'Service'],
    );
  });

  it('names the file, document and line of an invalid resource, and keeps the valid ones', () => {
    const text = `${GOOD}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: app }
spec:
  actoin: DENY
`;
    const { resources, errors } = parseManifests(text, 'bad.yaml');
    assert.equal(resources.length, 2);
    assert.equal(errors.length, 1);
    assert.deepEqual(
      { ...errors[0] },
      {
        kind: 'AuthorizationPolicy',
        name: 'app/deny-all',
        path: 'spec.actoin',
        message: 'unknown field "actoin"; did you mean "action"?',
        source: 'bad.yaml (document 4, line 18)',
      },
    );
    assert.equal(
      formatIssue(errors[0]!),
      'AuthorizationPolicy app/deny-all (bad.yaml (document 4, line 18)): spec.actoin: unknown field "actoin"; did you mean "action"?',
    );
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    const broken = parseManifests('kind: Namespace\nmetadata: {name: [\n', 'x.yaml');
    assert.equal(broken.resources.length, 0);
    assert.match(broken.errors[0]!.message, /^YAML syntax/);
    const dup = parseManifests(
      'apiVersion: v1\nkind: Namespace\nkind: Namespace\nmetadata: {name: a}\n',
      'dup.yaml',
    );
    assert.equal(dup.resources.length, 0);
    assert.match(dup.errors[0]!.message, /YAML syntax/);
  });

  it('accepts a kind: List document and JSON', () => {
    const list = parseManifests(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }],
      }),
      'list.json',
    );
    assert.deepEqual(list.errors, []);
    assert.equal(list.resources[0]?.metadata.name, 'a');
  });

  it('assertValid throws AMBIT_ERR_CONFIG_INVALID with every issue in detail', () => {
    assert.throws(
      () => assertValid({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'A' }, spex: {} }),
      (err: unknown) => {
        assert.ok(hasCode(err, CONFIG_INVALID));
        const issues = err.detail?.errors as { path: string }[];
        assert.deepEqual(issues.map((i) => i.path).sort(), ['metadata.name', 'spex']);
        assert.match(err.message, /Namespace A: metadata\.name/);
        return true;
      },
    );
  });
});
