// Issue 8, item 3: a workload address belongs to one workload. A WorkloadEntry claiming another
// workload's address (an entry's or a pod's) is refused at apply, inside the transaction; where a
// conflict still exists (a store written before this rule), the oldest object owns the address in
// the registry, and the loser gets neither endpoints nor a placement the CA would sign for.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertValid, type ConfigIssue, type Resource } from '../../src/config/index.ts';
import { ResourceApi, type ResourceApiOptions } from '../../src/control/api/resources.ts';
import { deriveRegistry, type LabPod } from '../../src/control/registry/index.ts';
import { EmbeddedStore, type StoredObject } from '../../src/control/store/index.ts';
import { AmbitError } from '../../src/errors/index.ts';

type After = { after: (fn: () => Promise<void> | void) => void };

async function open(
  t: After,
  opts: ResourceApiOptions = {},
): Promise<{ api: ResourceApi; store: EmbeddedStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-wl-'));
  const store = await EmbeddedStore.open(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { api: new ResourceApi(store, opts), store };
}

const entry = (name: string, ns: string, address: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: ns },
  spec: { address, serviceAccount: name, ...extra },
});

async function refused(p: Promise<unknown>): Promise<ConfigIssue[]> {
  let caught: unknown;
  await p.then(
    () => assert.fail('the apply was accepted'),
    (err) => {
      caught = err;
    },
  );
  assert.ok(caught instanceof AmbitError, String(caught));
  assert.equal(caught.code, 'AMBIT_ERR_CONFIG_INVALID', caught.message);
  return caught.detail?.errors as ConfigIssue[];
}

const pod: LabPod = {
  name: 'db',
  namespace: 'bank',
  node: 'node-1',
  address: '198.18.1.5',
  serviceAccount: 'db',
  labels: { app: 'db' },
};

describe('security: a workload cannot take another workload address', () => {
  test("a WorkloadEntry with another entry's address is refused, in any namespace and any spelling", async (t) => {
    const { api } = await open(t);
    await api.apply([entry('vm', 'bank', '198.18.2.5')]);
    for (const address of ['198.18.2.5', '::ffff:198.18.2.5', '::ffff:c612:205']) {
      const issues = await refused(api.apply([entry('thief', 'tenant', address)]));
      assert.deepEqual(
        issues.map((i) => [i.path, i.name]),
        [['spec.address', 'tenant/thief']],
      );
      assert.match(issues[0]!.message, /already another workload's/);
    }
    assert.equal(api.list({ kind: 'WorkloadEntry', namespace: 'tenant' }).length, 0);
    // Two in one batch are refused whole.
    await refused(api.apply([entry('a', 'one', '198.18.2.9'), entry('b', 'two', '198.18.2.9')]));
    assert.equal(api.list({ kind: 'WorkloadEntry' }).length, 1);
  });

  test("a WorkloadEntry with a pod's address (from the pod API, not the store) is refused", async (t) => {
    const { api } = await open(t, {
      addresses: { workloads: () => deriveRegistry({ resources: [], pods: [pod] }).workloads },
    });
    const issues = await refused(api.apply([entry('db-twin', 'tenant', '198.18.1.5', { node: 'node-1' })]));
    assert.equal(issues[0]!.path, 'spec.address');
  });

  test('an entry may keep its address, and one moved away in a batch frees it for another', async (t) => {
    const { api } = await open(t);
    await api.apply([entry('vm', 'app', '198.18.2.5')]);
    const [same] = await api.apply([entry('vm', 'app', '198.18.2.5', { labels: { v: '2' } })]);
    assert.equal(same!.action, 'configured');
    const results = await api.apply([entry('vm', 'app', '198.18.2.6'), entry('vm2', 'app', '198.18.2.5')]);
    assert.deepEqual(
      results.map((r) => r.action),
      ['configured', 'created'],
    );
  });

  test('a conflict written before the rule: the oldest object owns the address, the loser gets no identity', async (t) => {
    const { api, store } = await open(t);
    await api.apply([
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'bank', labels: { 'istio.io/dataplane-mode': 'ambient' } },
      },
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'tenant', labels: { 'istio.io/dataplane-mode': 'ambient' } },
      },
      entry('vm', 'bank', '198.18.2.5', { node: 'node-2', labels: { app: 'vm' } }),
    ]);
    // The tenant's entry goes straight into the store, as an older store could hold it; its name
    // sorts first, and it claims a pod's address too.
    const stamp = (r: Resource, created: string) =>
      ({
        ...r,
        metadata: {
          ...r.metadata,
          uid: `uid-${r.metadata.name}`,
          resourceVersion: '',
          generation: 1,
          creationTimestamp: created,
        },
      }) as StoredObject;
    const later = new Date(Date.now() + 60_000).toISOString();
    const thieves = [
      stamp(
        assertValid(entry('aaa', 'tenant', '198.18.2.5', { node: 'node-2', serviceAccount: 'vm' })),
        later,
      ),
      stamp(
        assertValid(entry('aab', 'tenant', '198.18.1.5', { node: 'node-1', serviceAccount: 'db' })),
        '2000-01-01T00:00:00Z',
      ),
    ];
    await store.commit(() =>
      thieves.map((object) => ({
        op: 'put' as const,
        resource: { key: `WorkloadEntry/tenant/${object.metadata.name}`, rev: 0, object },
      })),
    );
    const reg = deriveRegistry({ resources: store.list().map((r) => r.object as Resource), pods: [pod] });
    assert.deepEqual(reg.workloads.map((w) => `${w.namespace}/${w.name}`).sort(), ['bank/db', 'bank/vm']);
    assert.deepEqual(reg.issues.map((i) => i.object).sort(), [
      'WorkloadEntry tenant/aaa',
      'WorkloadEntry tenant/aab',
    ]);
    // What the CA's placement check asks: which identities have an enrolled workload on a node.
    const onNode = (node: string) =>
      reg.workloads.filter((w) => w.node === node && w.enrolled).map((w) => w.identity);
    assert.ok(!onNode('node-2').includes('spiffe://cluster.local/ns/tenant/sa/vm' as never));
    assert.ok(!onNode('node-1').some((id) => id.includes('/ns/tenant/')));
  });
});

describe('addresses no workload may claim', () => {
  test('unspecified, link-local, multicast and broadcast are refused at validation', async (t) => {
    const { api } = await open(t);
    for (const address of [
      '0.0.0.0',
      '::ffff:169.254.169.254',
      '169.254.169.254',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      'fe80::1',
      'ff02::1',
    ]) {
      const issues = await refused(api.apply([entry('x', 'tenant', address)]));
      assert.equal(issues[0]!.path, 'spec.address', address);
      assert.match(issues[0]!.message, /unicast address of one host/, address);
    }
  });

  test("the mesh's infrastructure (nodes, pod gateways, control plane) is reserved", async (t) => {
    const { api, store } = await open(t, {
      addresses: { reserved: ['198.18.0.0/24', '198.18.1.1/32', '127.0.0.0/8', '::1/128'] },
    });
    for (const address of ['198.18.0.1', '198.18.0.254', '198.18.1.1', '127.0.0.1', '::1']) {
      const issues = await refused(api.apply([entry('x', 'tenant', address)]));
      assert.equal(issues[0]!.path, 'spec.address');
      assert.match(issues[0]!.message, /reserved for the mesh's infrastructure/, address);
    }
    assert.equal(store.revision, 0, 'nothing was stored');
    await api.apply([entry('x', 'tenant', '198.18.1.9')]);
  });

  test('an entry at a reserved address stored before the rule is left out of the registry', () => {
    const stored = assertValid(entry('x', 'tenant', '198.18.0.254')) as Resource;
    const registry = deriveRegistry({ resources: [stored], options: { reservedCidrs: ['198.18.0.0/24'] } });
    assert.equal(registry.workloads.length, 0);
    assert.ok(registry.issues.some((i) => /reserved for the mesh's infrastructure/.test(i.message)));
  });
});
