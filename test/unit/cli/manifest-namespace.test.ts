// `-n` for manifests, as kubectl's: which documents go into the flag's namespace, which are left alone
// (cluster-scoped kinds, documents already there), which are refused and how the refusal names them;
// and readManifests refusing a whole read for one document elsewhere.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readManifests } from '../../../src/cli/config.ts';
import { namespaceMismatch, parseManifests, resourceNamespace } from '../../../src/config/index.ts';
import { hasCode } from '../../../src/errors/index.ts';

const POLICY = (meta: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: ${meta}
spec: {}
`;
const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata: { name: foo }
`;
const MESH_CONFIG = `apiVersion: ambit.dev/v1alpha1
kind: MeshConfig
metadata: { name: default }
spec: {}
`;

/** parseManifests with a namespace, as readManifests calls it; every text here is valid. */
function place(text: string, namespace: string) {
  const parsed = parseManifests(text, 'f.yaml', { namespace });
  assert.deepEqual(parsed.errors, []);
  return { resources: parsed.resources, issues: parsed.elsewhere };
}

describe('parseManifests with a namespace', () => {
  const cases: Array<{ name: string; text: string; ns: string; want: Array<string | undefined> }> = [
    {
      name: 'a policy with no namespace goes into -n',
      text: POLICY('{ name: p }'),
      ns: 'foo',
      want: ['foo'],
    },
    {
      name: 'a policy already in -n stays',
      text: POLICY('{ name: p, namespace: foo }'),
      ns: 'foo',
      want: ['foo'],
    },
    {
      name: 'written `default` is a namespace like any other',
      text: POLICY('{ name: p, namespace: default }'),
      ns: 'default',
      want: ['default'],
    },
    { name: 'Namespace is cluster-scoped: left alone', text: NAMESPACE, ns: 'bar', want: [undefined] },
    { name: 'MeshConfig is cluster-scoped: left alone', text: MESH_CONFIG, ns: 'bar', want: [undefined] },
    {
      name: 'every document of a stream, empty documents skipped',
      text: `${NAMESPACE}---\n# nothing\n---\n${POLICY('{ name: a }')}---\n${POLICY('{ name: b, namespace: foo }')}`,
      ns: 'foo',
      want: [undefined, 'foo', 'foo'],
    },
    {
      name: 'the items of a List',
      text: `apiVersion: v1\nkind: List\nitems:\n  - { apiVersion: v1, kind: Service, metadata: { name: s }, spec: { ports: [{ port: 80 }] } }\n  - { apiVersion: v1, kind: Namespace, metadata: { name: foo } }\n`,
      ns: 'foo',
      want: ['foo', undefined],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { resources, issues } = place(c.text, c.ns);
      assert.deepEqual(issues, []);
      assert.deepEqual(resources.map(resourceNamespace), c.want);
    });
  }

  test('a resource in another namespace is refused in kubectl words, naming its document and line', () => {
    const text = `${POLICY('{ name: a }')}---\n${POLICY('{ name: other, namespace: a }')}`;
    const { resources, issues } = place(text, 'b');
    assert.equal(resources.length, 1);
    assert.deepEqual(issues, [
      {
        kind: 'AuthorizationPolicy',
        name: 'a/other',
        path: 'metadata.namespace',
        message: `the namespace from the provided object "a" does not match the namespace "b". You must pass '--namespace=a' to perform this operation.`,
        source: 'f.yaml (document 2, line 6)',
      },
    ]);
  });

  test('a List item elsewhere is named by its item index', () => {
    const text = `kind: List
items:
  - { apiVersion: v1, kind: Namespace, metadata: { name: a } }
  - { apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: { name: p, namespace: a }, spec: {} }
`;
    const { issues } = place(text, 'b');
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.source, 'f.yaml (document 1, line 1), item 1');
  });

  test('without a namespace, one that names none is in default, and none is elsewhere', () => {
    const parsed = parseManifests(POLICY('{ name: p }'), 'f.yaml');
    assert.equal(resourceNamespace(parsed.resources[0]!), 'default');
    assert.deepEqual(parsed.elsewhere, []);
  });

  test('an invalid resource under -n is named in the namespace it was put into', () => {
    const parsed = parseManifests(
      POLICY('{ name: p }').replace('spec: {}', 'spec: { action: NOPE }'),
      'f.yaml',
      {
        namespace: 'foo',
      },
    );
    assert.equal(parsed.errors[0]?.name, 'foo/p');
  });
});

describe('readManifests with a namespace', () => {
  async function inDir(t: import('node:test').TestContext, files: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'ambit-ns-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    return dir;
  }

  test('without -n a resource with no namespace is in default, as before', async (t) => {
    const dir = await inDir(t, { 'p.yaml': POLICY('{ name: p }') });
    const [r] = await readManifests([join(dir, 'p.yaml')]);
    assert.equal(resourceNamespace(r!), 'default');
  });

  test('with -n every file of a directory is placed', async (t) => {
    const dir = await inDir(t, {
      'a.yaml': POLICY('{ name: a }'),
      'b.yaml': `${NAMESPACE}---\n${POLICY('{ name: b }')}`,
    });
    const resources = await readManifests([dir], 'foo');
    assert.deepEqual(resources.map(resourceNamespace), ['foo', undefined, 'foo']);
  });

  test('one resource elsewhere in one file refuses the whole read, every one named', async (t) => {
    const dir = await inDir(t, {
      'a.yaml': POLICY('{ name: a }'),
      'b.yaml': `${POLICY('{ name: x, namespace: bar }')}---\n${POLICY('{ name: y, namespace: baz }')}`,
    });
    await assert.rejects(readManifests([dir], 'foo'), (err) => {
      assert.ok(hasCode(err, 'AMBIT_ERR_CLI_NAMESPACE_MISMATCH'));
      assert.match(err.message, /^nothing was sent; resources name another namespace than -n:/);
      assert.ok(
        err.message.includes(`AuthorizationPolicy bar/x (${join(dir, 'b.yaml')} (document 1, line 1))`),
      );
      assert.ok(err.message.includes(namespaceMismatch('bar', 'foo')));
      assert.ok(err.message.includes(namespaceMismatch('baz', 'foo')));
      return true;
    });
  });

  test('an invalid document is reported as invalid first', async (t) => {
    const dir = await inDir(t, {
      'a.yaml': `${POLICY('{ name: a, namespace: bar }')}---\n${POLICY('{ name: B }')}`,
    });
    await assert.rejects(readManifests([dir], 'foo'), (err) => hasCode(err, 'AMBIT_ERR_CONFIG_INVALID'));
  });
});
