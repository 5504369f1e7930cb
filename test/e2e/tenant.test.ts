// Issue 8, item 3, in the lab (root): a tenant that may apply objects in its own namespace cannot take
// another namespace's addresses. The refusals are the admin API's whoever asks (here the operator's own
// socket, which can do anything else); namespace-scoped tokens are tested in test/security/admin-*.
// What matters here is the data plane afterwards: the victim's clients still reach the victim, and after
// the victim's ztunnel restarts, plaintext from outside the mesh still cannot reach a STRICT pod.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { AdminClient } from '../../src/cli/client.ts';
import { meshDown, meshUp } from '../../src/cli/up.ts';
import type { Lab } from '../../src/lab/index.ts';
import { eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

async function upMesh(t: TestContext) {
  const home = await mkdtemp(join(tmpdir(), 'ambit-tenant-'));
  const name = `t${randomBytes(3).toString('hex')}`;
  t.after(async () => {
    await meshDown({ home, lab: name });
    await rm(home, { recursive: true, force: true });
  });
  return meshUp({ home, lab: name, nodes: 2 });
}

const curl = (lab: Lab, from: string, url: string) => lab.exec(from, ['curl', '-sS', '--max-time', '5', url]);

/** The refusal's field paths and messages, as the admin API reports them. */
async function refused(admin: AdminClient, object: unknown): Promise<string> {
  const err = await admin.call('POST', '/ambit/v1/apply', { objects: [object] }).then(
    () => assert.fail(`accepted: ${JSON.stringify(object)}`),
    (e: {
      message: string;
      detail?: { status?: number; causes?: Array<{ field: string; message: string }> };
    }) => e,
  );
  assert.equal(err.detail?.status, 422, err.message);
  return (err.detail?.causes ?? []).map((c) => `${c.field}: ${c.message}`).join('\n');
}

describe('tenants and addresses, end-to-end', {
  skip: !isRoot && 'NOT ROOT: lab end-to-end tests need root (CI runs them as root)',
}, () => {
  test("a tenant cannot take a Service VIP or a pod's address, before or after a ztunnel restart", async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin } = await upMesh(t);
    const vault = await lab.addPod({
      name: 'vault',
      node: 'node-2',
      namespace: 'bank',
      serviceAccount: 'vault',
      labels: { app: 'vault' },
    });
    await lab.addPod({ name: 'teller', node: 'node-1', namespace: 'bank', serviceAccount: 'teller' });
    const evil = await lab.addPod({
      name: 'evil',
      node: 'node-1',
      namespace: 'tenant',
      serviceAccount: 'evil',
      labels: { app: 'evil' },
    });
    await lab.addPod({ name: 'outsider', node: 'node-1', namespace: 'legacy', serviceAccount: 'legacy' });
    const ambient = { 'istio.io/dataplane-mode': 'ambient' };
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bank', labels: ambient } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tenant', labels: ambient } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'legacy' } },
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'vault', namespace: 'bank' },
          spec: { selector: { app: 'vault' }, ports: [{ port: 80, targetPort: 8080 }] },
        },
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'PeerAuthentication',
          metadata: { name: 'strict', namespace: 'bank' },
          spec: { mtls: { mode: 'STRICT' } },
        },
      ],
    });
    await lab.run('vault', ['ambit', 'sample', 'echo', '--port', '8080']);
    await lab.run('evil', ['ambit', 'sample', 'echo', '--port', '8080']);
    const vip = await eventually(
      async () =>
        (
          await admin.call<{ items: Array<{ key: string; vips: string[] }> }>('GET', '/ambit/v1/services')
        ).items.find((s) => s.key === 'bank/vault')?.vips[0],
      20_000,
      'the vault VIP',
    );
    const reachesVault = async (what: string) =>
      eventually(
        async () => {
          const r = await curl(lab, 'teller', `http://${vip}/`);
          return r.code === 0 && JSON.parse(r.stdout).pod === 'vault' ? true : undefined;
        },
        20_000,
        what,
      );
    await reachesVault('the teller to reach the vault through its VIP');

    // The tenant's Service asks for the vault's VIP, then for the vault pod's own address.
    const service = (clusterIP: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `grab-${clusterIP.replaceAll('.', '-')}`, namespace: 'tenant' },
      spec: { clusterIP, selector: { app: 'evil' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    assert.match(await refused(admin, service(vip)), /spec\.clusterIP.*provided IP is already allocated/);
    assert.match(await refused(admin, service(vault.address)), /spec\.clusterIP.*not in the valid range/);
    // The tenant's WorkloadEntry claims the STRICT vault pod's address.
    const entry = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'impostor', namespace: 'tenant' },
      spec: { address: vault.address, serviceAccount: 'evil', labels: { app: 'evil' }, node: 'node-1' },
    };
    assert.match(await refused(admin, entry), /spec\.address/);
    assert.equal(
      (
        await admin.call<{ items: unknown[] }>(
          'GET',
          '/apis/networking.istio.io/v1/namespaces/tenant/workloadentries',
        )
      ).items.length,
      0,
      'nothing of the tenant was stored',
    );
    await reachesVault('the vault to keep its VIP');
    assert.notEqual(evil.address, vault.address);

    // Restart the vault's ztunnel: what it learns afresh is still the vault's, so STRICT still holds.
    const status = await lab.status();
    const z2 = status!.nodes[1]!.processes.find((p) => p.running && p.command.includes('ztunnel'))!;
    process.kill(z2.pid, 'SIGKILL');
    await eventually(
      async () =>
        (await lab.status())!.nodes[1]!.processes.some((p) => p.running && p.command.includes('ztunnel'))
          ? undefined
          : true,
      10_000,
      'the ztunnel to die',
    );
    await lab.run('node-2', z2.command);
    await reachesVault('the vault to be reachable again after the restart');
    const plain = await curl(lab, 'outsider', `http://${vault.address}:8080/`);
    assert.notEqual(plain.code, 0, `plaintext from outside the mesh reached a STRICT pod: ${plain.stdout}`);
  });
});
