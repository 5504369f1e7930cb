// Issue 8, items 3 and "keep them closed", in the lab (root): a tenant that may apply objects in its own
// namespace cannot take another namespace's addresses nor write into it. The tenant acts as a real one:
// an `edit` token for namespace `tenant` only, minted through the operator's socket, sent with curl from
// inside the lab to the control plane's TCP admin listener (loopback in the bridge's namespace).
// Then the data plane: the victim's clients still reach the victim, and after the victim's ztunnel
// restarts, plaintext from outside the mesh still cannot reach a STRICT pod.

import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { CONTROL_TARGET, type Lab } from '../../src/lab/index.ts';
import { eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { labMesh } from '../helpers/mesh-lab.ts';

/** The control plane's TCP admin listener, on loopback in the bridge's namespace (`CONTROL_TARGET`). */
const ADMIN_PORT = 15014;

const upMesh = (t: TestContext) =>
  labMesh(t, 'tenant', { controlArgs: ['--admin-listen', `127.0.0.1:${ADMIN_PORT}`] });

const curl = (lab: Lab, from: string, url: string) => lab.exec(from, ['curl', '-sS', '--max-time', '5', url]);

interface Answer {
  status: number;
  body: {
    message?: string;
    reason?: string;
    details?: { causes?: Array<{ field: string; message: string }> };
  };
}

/** The tenant applies objects with its bearer token, with curl from inside the control plane's namespace. */
async function tenantApply(lab: Lab, token: string, objects: unknown[]): Promise<Answer> {
  const r = await lab.exec(CONTROL_TARGET, [
    'curl',
    '-sS',
    '--max-time',
    '10',
    '-w',
    '\n%{http_code}',
    '-H',
    `authorization: Bearer ${token}`,
    '-H',
    'content-type: application/json',
    '--data',
    JSON.stringify({ objects }),
    `http://127.0.0.1:${ADMIN_PORT}/ambit/v1/apply`,
  ]);
  assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)), body: JSON.parse(r.stdout.slice(0, at)) };
}

/** The refusal's field paths and messages (422), as the admin API reports them to the tenant. */
async function refused(lab: Lab, token: string, object: unknown): Promise<string> {
  const a = await tenantApply(lab, token, [object]);
  assert.equal(a.status, 422, `${JSON.stringify(object)}: ${a.status} ${a.body.message}`);
  return (a.body.details?.causes ?? []).map((c) => `${c.field}: ${c.message}`).join('\n');
}

describe('tenants and addresses, end-to-end', {
  skip: !isRoot && 'NOT ROOT: lab end-to-end tests need root (CI runs them as root)',
}, () => {
  test("a tenant's edit token cannot take a Service VIP, a pod's address or another namespace, before or after a ztunnel restart", async (t) => {
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
    await lab.addPod({
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

    // The operator mints the tenant's token: edit, in namespace `tenant` only.
    const { token, role, namespaces } = await admin.call<{
      token: string;
      role: string;
      namespaces: string[];
    }>('POST', '/ambit/v1/admin-tokens', { name: 'tenant', role: 'edit', namespaces: ['tenant'] });
    assert.deepEqual({ role, namespaces }, { role: 'edit', namespaces: ['tenant'] });
    // An ordinary object in its own namespace is the tenant's to write.
    const own = await tenantApply(lab, token, [
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'evil', namespace: 'tenant' },
        spec: { selector: { app: 'evil' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    ]);
    assert.equal(own.status, 200, own.body.message);

    // The tenant's Service asks for the vault's VIP, then for the vault pod's own address.
    const service = (clusterIP: string) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `grab-${clusterIP.replaceAll('.', '-')}`, namespace: 'tenant' },
      spec: { clusterIP, selector: { app: 'evil' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    assert.match(
      await refused(lab, token, service(vip)),
      /spec\.clusterIP.*provided IP is already allocated/,
    );
    assert.match(
      await refused(lab, token, service(vault.address)),
      /spec\.clusterIP.*not in the valid range/,
    );
    // The tenant's WorkloadEntry claims the STRICT vault pod's address.
    const entry = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'impostor', namespace: 'tenant' },
      spec: { address: vault.address, serviceAccount: 'evil', labels: { app: 'evil' }, node: 'node-1' },
    };
    assert.match(await refused(lab, token, entry), /spec\.address/);
    // …or the mesh's own infrastructure: the control plane, its node's pod gateway, loopback.
    for (const address of ['198.18.0.254', '198.18.1.1', '127.0.0.1']) {
      const grab = {
        ...entry,
        metadata: { name: 'grab-infra', namespace: 'tenant' },
        spec: { ...entry.spec, address },
      };
      assert.match(await refused(lab, token, grab), /spec\.address.*reserved for the mesh's infrastructure/);
    }
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
    // The bank's namespace is not the tenant's: neither a policy there nor weakening its STRICT mode.
    for (const object of [
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'let-evil-in', namespace: 'bank' },
        spec: { action: 'ALLOW', rules: [{}] },
      },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'strict', namespace: 'bank' },
        spec: { mtls: { mode: 'PERMISSIVE' } },
      },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'off', namespace: 'bank' },
        spec: { mtls: { mode: 'DISABLE' } },
      },
    ]) {
      const a = await tenantApply(lab, token, [object]);
      assert.equal(a.status, 403, `${object.kind} in bank: ${a.status} ${a.body.message}`);
      assert.equal(a.body.reason, 'Forbidden');
      assert.match(a.body.message ?? '', /User "token:tenant"/, 'refused as the tenant, not as anyone else');
    }
    // From its own namespace, a policy may not reach across to the bank's Service.
    const across = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'reach-across', namespace: 'tenant' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'vault', namespace: 'bank' }],
        action: 'DENY',
        rules: [{}],
      },
    };
    assert.match(
      await refused(lab, token, across),
      /targetRefs.*cross namespace referencing is not currently supported/,
    );
    const strict = await admin.call<{ spec: { mtls: { mode: string } } }>(
      'GET',
      '/apis/security.istio.io/v1/namespaces/bank/peerauthentications/strict',
    );
    assert.equal(strict.spec.mtls.mode, 'STRICT', "the bank's STRICT mode is unchanged");
    await reachesVault('the vault to keep its VIP');

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
    // Refused by STRICT, so reset (curl 56, or 7 when the RST beats its connect check), not merely failed.
    assert.ok(
      [56, 7].includes(plain.code),
      `plaintext from outside the mesh to a STRICT pod: curl ${plain.code} ${plain.stderr} ${plain.stdout}`,
    );
  });
});
