// The waypoint as a user meets it (root): `ambit demo`, then `ambit waypoint apply -n shop
// --enroll-namespace --wait`, then the storefront's catalog split 90/10 by an HTTPRoute from the client
// pod, `istio_requests_total{reporter="waypoint"}` on the waypoint's metrics, `ambit waypoint status`
// showing it programmed, and the split going on after the control plane is killed. Its own AMBIT_HOME
// and lab name.

import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

const SPLIT = resolve(import.meta.dirname, '../../examples/storefront/catalog-split.yaml');

/** Counts, from inside the client pod, which catalog pod served each of N requests to URL. */
const COUNT = `
const [url, n] = process.argv.slice(1);
const seen = {};
for (let i = 0; i < Number(n); i++) {
  const r = await fetch(url);
  const body = await r.text();
  const pod = r.status === 200 ? (/catalog-v[12]/.exec(body)?.[0] ?? 'other') : 'status-' + r.status;
  seen[pod] = (seen[pod] ?? 0) + 1;
}
console.log(JSON.stringify(seen));
`;

describe('the demo with a waypoint', {
  skip: !isRoot && 'NOT ROOT: waypoint end-to-end tests need root (CI runs them as root)',
}, () => {
  test('splits catalog 90/10 through the waypoint and reports it', async (t) => {
    if (skipUnlessRoot(t)) return;
    const cli = await cliLab('d');
    const { lab } = cli;
    const ok = async (args: string[], input?: string) => (await cli.ok(args, input)).stdout;
    t.after(cli.down);

    await ok(['demo']);
    const applied = await ok(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace', '--wait']);
    assert.match(applied, /waypoint shop\/waypoint applied/);
    assert.match(applied, /namespace shop labeled with "istio.io\/use-waypoint: waypoint"/);
    const status = await ok(['waypoint', 'status', '-n', 'shop']);
    assert.match(status, /shop\s+waypoint\s+True\s+Programmed\s+Programmed/);

    await ok(['apply', '-f', SPLIT]);
    const services = JSON.parse(await ok(['get', 'services', '-n', 'shop', '-o', 'json'])) as {
      items: Array<{ name: string; vips: string[] }>;
    };
    const catalog = services.items.find((s) => s.name === 'catalog')!.vips[0]!;
    const url = `http://${catalog}/products`;
    const count = async (n: number) => {
      const r = await lab.exec(
        'client',
        [process.execPath, '--input-type=module', '-e', COUNT, url, String(n)],
        {
          timeoutMs: 120_000,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Record<string, number>;
    };
    // The route is in force once its status says so (the waypoint holds it soon after).
    await eventually(
      async () => {
        const route = JSON.parse(
          await ok(['get', 'httproute', 'catalog-split', '-n', 'shop', '-o', 'json']),
        ) as {
          status: { conditions: Array<{ type: string; status: string }> };
        };
        return route.status.conditions.some((c) => c.type === 'Accepted' && c.status === 'True')
          ? true
          : undefined;
      },
      30_000,
      'the route to be accepted',
    );
    const seen = await count(500);
    const v1 = seen['catalog-v1'] ?? 0;
    const v2 = seen['catalog-v2'] ?? 0;
    assert.equal(v1 + v2, 500, `every request answered by a catalog: ${JSON.stringify(seen)}`);
    assert.ok(v1 >= 425 && v1 <= 475, `v1 took ${v1} of 500 (90 % ± 5 %): ${JSON.stringify(seen)}`);

    // The waypoint counted them, as Istio's waypoint does.
    const pod = (await lab.status())?.pods.find(
      (p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint',
    );
    assert.ok(pod, 'the waypoint replica is a pod of the lab');
    const metrics = await lab.exec(pod.name, ['curl', '-s', 'http://127.0.0.1:15020/metrics']);
    const line = metrics.stdout
      .split('\n')
      .find(
        (l) =>
          l.startsWith('istio_requests_total{') &&
          l.includes('reporter="waypoint"') &&
          l.includes('destination_service="catalog-v1.shop.svc.cluster.local"') &&
          l.includes('destination_workload="catalog-v1"') &&
          l.includes('response_code="200"') &&
          l.includes('source_principal="spiffe://cluster.local/ns/shop/sa/client"'),
      );
    assert.ok(
      line,
      `istio_requests_total for client → catalog-v1 on the waypoint:\n${metrics.stdout.slice(0, 2000)}`,
    );
    assert.ok(Number(line.split(' ').at(-1)) >= v1, line);

    // Without its control plane, the waypoint keeps its last routes: the split goes on.
    const control = (await lab.status())?.control.processes.find(
      (p) => p.running && p.command[1] === 'control',
    );
    assert.ok(control, 'the control plane runs in the lab');
    process.kill(control.pid, 'SIGKILL');
    const after = await count(100);
    assert.equal((after['catalog-v1'] ?? 0) + (after['catalog-v2'] ?? 0), 100, JSON.stringify(after));
    assert.ok(
      (after['catalog-v1'] ?? 0) > (after['catalog-v2'] ?? 0),
      `still split: ${JSON.stringify(after)}`,
    );
  });
});
