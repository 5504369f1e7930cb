// Issue 8, item 3: a tenant that may only apply objects in its own namespace cannot take another's
// Service address. A clusterIP must be inside the VIP range and not in use (allocated or explicit),
// checked inside the store transaction, refused with Kubernetes' wording and a field path; an
// explicit clusterIP never evicts an allocated VIP.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ConfigIssue } from '../../src/config/index.ts';
import { ResourceApi, type ResourceApiOptions } from '../../src/control/api/resources.ts';
import { type ControlPlane, startControlPlane } from '../../src/control/index.ts';
import { deriveRegistry } from '../../src/control/registry/index.ts';
import { EmbeddedStore } from '../../src/control/store/index.ts';
import { AmbitError } from '../../src/errors/index.ts';

type After = { after: (fn: () => Promise<void> | void) => void };

async function api(t: After, opts: ResourceApiOptions = {}): Promise<ResourceApi> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-addr-'));
  const store = await EmbeddedStore.open(dir);
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return new ResourceApi(store, opts);
}

const service = (name: string, ns: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec },
});

const entry = (name: string, ns: string, address: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: ns },
  spec: { address, serviceAccount: name },
});

/** The issues of the AMBIT_ERR_CONFIG_INVALID that `p` rejects with. */
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

/** Resolves once the control plane's registry satisfies `ok` (it re-derives shortly after commits). */
function derived(cp: ControlPlane, ok: () => boolean): Promise<void> {
  if (ok()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!ok()) return;
      cp.mesh.off('derived', check);
      resolve();
    };
    cp.mesh.on('derived', check);
  });
}

describe('security: a Service cannot take another Service address', () => {
  test('through the control plane: clusterIP = another Service allocated VIP is refused; the victim keeps it', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ambit-sec-cp-'));
    const cp = await startControlPlane({
      dataDir: dir,
      adminListen: '127.0.0.1:0',
      adminSocket: '',
      grpcListen: '127.0.0.1:0',
    });
    t.after(async () => {
      await cp.close();
      await rm(dir, { recursive: true, force: true });
    });
    await cp.api.apply([service('payments', 'bank')]);
    const victim = () => cp.mesh.registry.services.find((s) => s.key === 'bank/payments');
    await derived(cp, () => (victim()?.vips.length ?? 0) > 0);
    const vip = victim()!.vips[0]!;

    const issues = await refused(cp.api.apply([service('payments', 'tenant', { clusterIP: vip })]));
    assert.deepEqual(
      issues.map((i) => i.path),
      ['spec.clusterIP'],
    );
    assert.match(
      issues[0]!.message,
      new RegExp(`failed to allocate IP ${vip}: provided IP is already allocated`),
    );
    assert.equal(cp.api.list({ kind: 'Service', namespace: 'tenant' }).length, 0, 'nothing was stored');

    // A pod's (or any out-of-range) address is refused with the range named.
    const outside = await refused(cp.api.apply([service('grab', 'tenant', { clusterIP: '198.18.1.10' })]));
    assert.match(outside[0]!.message, /not in the valid range\. The range of valid IPs is 198\.19\.0\.0\/16/);

    // The victim still has its address after all that.
    await cp.api.apply([service('other', 'tenant')]);
    await derived(cp, () => cp.mesh.registry.services.some((s) => s.key === 'tenant/other'));
    assert.deepEqual(victim()!.vips, [vip]);
  });

  test('an explicit clusterIP in use by another Service is refused, in the store and in one batch', async (t) => {
    const a = await api(t);
    await a.apply([service('dns', 'kube', { clusterIP: '198.19.0.10' })]);
    const issues = await refused(a.apply([service('dns', 'tenant', { clusterIPs: ['198.19.0.10'] })]));
    assert.deepEqual(
      issues.map((i) => [i.path, i.name]),
      [['spec.clusterIPs[0]', 'tenant/dns']],
    );
    // Two in one batch: the whole batch is refused, nothing is stored.
    const batch = await refused(
      a.apply([
        service('x', 'one', { clusterIP: '198.19.0.20' }),
        service('y', 'two', { clusterIP: '198.19.0.20' }),
      ]),
    );
    assert.deepEqual(
      batch.map((i) => i.name),
      ['two/y'],
    );
    assert.equal(a.list({ kind: 'Service' }).length, 1);
  });

  test('a Service may keep or pin its own address; re-applying it is not a conflict', async (t) => {
    let vips: Record<string, string> = {};
    const a = await api(t, { addresses: { allocatedVips: () => vips } });
    await a.apply([service('web', 'app')]);
    vips = deriveRegistry({ resources: a.list({ kind: 'Service' }) }).vips;
    assert.equal(vips['app/web'], '198.19.0.1');
    const [pinned] = await a.apply([service('web', 'app', { clusterIP: '198.19.0.1' })]);
    assert.equal(pinned!.action, 'configured');
    const [again] = await a.apply([service('web', 'app', { clusterIP: '198.19.0.1' })]);
    assert.equal(again!.action, 'unchanged');
  });

  test('the configured VIP range is the one enforced', async (t) => {
    const a = await api(t, { addresses: { vipRange: '198.19.8.0/24' } });
    const issues = await refused(a.apply([service('web', 'app', { clusterIP: '198.19.0.5' })]));
    assert.match(issues[0]!.message, /The range of valid IPs is 198\.19\.8\.0\/24/);
    await a.apply([service('web', 'app', { clusterIP: '198.19.8.5' })]);
  });

  test('a clusterIP that is a workload address is refused, and a workload address that is a VIP', async (t) => {
    const vips: Record<string, string> = { 'app/allocated': '198.19.0.1' };
    const a = await api(t, { addresses: { allocatedVips: () => vips } });
    // Workload addresses may sit inside the VIP range: both directions are checked.
    await a.apply([entry('vm', 'app', '198.19.0.50')]);
    const onWorkload = await refused(a.apply([service('grab', 'tenant', { clusterIP: '198.19.0.50' })]));
    assert.match(onWorkload[0]!.message, /already allocated \(it is a workload's address\)/);
    const onVip = await refused(a.apply([entry('vm2', 'tenant', '198.19.0.1')]));
    assert.deepEqual(
      onVip.map((i) => [i.path, i.message.includes("Service's virtual IP")]),
      [['spec.address', true]],
    );
    await a.apply([service('explicit', 'app', { clusterIP: '198.19.0.60' })]);
    const onExplicit = await refused(a.apply([entry('vm3', 'tenant', '198.19.0.60')]));
    assert.equal(onExplicit[0]!.path, 'spec.address');
  });
});
