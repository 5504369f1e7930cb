// The highly available control plane in the lab (root, etcd): `ambit up --ha` (three etcd members, two
// replicas), `ambit demo`, then, under a stream of requests from the client pod and a stream of
// applies: the replica node-1 is connected to is killed, then one etcd member, then a second (quorum
// lost: applies refused with a clear error, traffic flowing); `ambit up --ha` restarts what died and
// everything converges. Every apply that was acknowledged is then present on every replica, and a
// policy applied after the faults is enforced. Its own AMBIT_HOME and lab name.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AdminClient } from '../../src/cli/client.ts';
import { meshAdmin } from '../../src/cli/up.ts';
import { NO_ETCD } from '../helpers/etcd.ts';
import { cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

/** From the client pod: GET url every 50 ms until the stop file exists; prints each failure and the count. */
const LOAD = `
import { existsSync } from 'node:fs';
const [url, stop] = process.argv.slice(1);
let ok = 0;
const failures = [];
const started = Date.now();
while (!existsSync(stop) && Date.now() - started < 600_000) {
  const t = Date.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
    await r.text();
    if (r.status === 200) ok++;
    else failures.push({ t, status: r.status });
  } catch (err) {
    failures.push({ t, error: String(err.cause?.code ?? err.name) });
  }
  await new Promise((r) => setTimeout(r, 50));
}
console.log(JSON.stringify({ ok, failures }));
`;

/** From the client pod: the time (epoch ms) the first request to url fails, polling every 20 ms. */
const FIRST_FAILURE = `
const [url] = process.argv.slice(1);
const started = Date.now();
while (Date.now() - started < 30_000) {
  const t = Date.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await r.text();
    if (r.status !== 200) { console.log(t); process.exit(0); }
  } catch {
    console.log(t);
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 20));
}
process.exit(1);
`;

interface ProxyRow {
  name: string;
  kind: string;
  controlPlane: string;
  state: string;
}

const probe = (i: number) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: `probe-${i}`, namespace: 'ha-probe' },
  // Selects nothing that runs: a write that changes no traffic.
  spec: { selector: { matchLabels: { app: 'nothing' } }, action: 'ALLOW', rules: [{}] },
});

describe('a highly available control plane', {
  skip: (!isRoot && 'NOT ROOT: HA end-to-end tests need root (CI runs them as root)') || NO_ETCD,
}, () => {
  test('losing a replica and etcd members leaves traffic flowing and loses no acknowledged write', async (t) => {
    if (skipUnlessRoot(t)) return;
    const cli = await cliLab('h');
    const { lab, home } = cli;
    const ok = async (args: string[]) => (await cli.ok(args)).stdout;
    t.after(cli.down);

    const up = await ok(['up', '--ha']);
    assert.match(
      up,
      /2 control-plane replica\(s\) at 198\.18\.0\.211:15010, 198\.18\.0\.212:15010 on 3 etcd/,
    );
    await ok(['demo']);
    const admin = meshAdmin(home);
    const proxies = async () =>
      (await admin.call<{ items: ProxyRow[] }>('GET', '/ambit/v1/proxies')).items.filter(
        (p) => p.kind === 'ztunnel',
      );
    await eventually(
      async () => ((await proxies()).length === 2 ? true : undefined),
      20_000,
      'both ztunnels',
    );
    const status = await ok(['lab', 'status']);
    assert.match(status, /etcd-3\s+198\.18\.0\.203\s+1/);
    assert.match(status, /control-1 \(answered\)\s+\S*\s+\d+\s+etcd: writable/);
    assert.match(status, /node-1\s+ztunnel\s+control-[12]\s+SYNCED/);

    // Requests from the client pod and applies, all through the faults.
    const stopFile = join(home, 'stop-load');
    const load = lab.exec(
      'client',
      [process.execPath, '--input-type=module', '-e', LOAD, 'http://frontend.shop/api/products', stopFile],
      { timeoutMs: 900_000 },
    );
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ha-probe' } }],
    });
    const acknowledged: number[] = [];
    const refused: Array<{ i: number; message: string }> = [];
    let applying = true;
    let next = 0;
    const applies = (async () => {
      while (applying) {
        const i = next++;
        try {
          await admin.call('POST', '/ambit/v1/apply', { objects: [probe(i)] });
          acknowledged.push(i);
        } catch (err) {
          refused.push({ i, message: `${(err as { code?: string }).code}: ${(err as Error).message}` });
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const ackedSoon = async (what: string) => {
      const had = acknowledged.length;
      await eventually(async () => (acknowledged.length >= had + 3 ? true : undefined), 30_000, what);
    };
    await ackedSoon('applies before the faults');

    const pidOf = async (host: string) => {
      const h = (await lab.status())!.hosts.find((x) => x.name === host)!;
      return h.processes.find((p) => p.running)!.pid;
    };
    // 1. The replica node-1 is connected to dies: node-1 moves to the other, applies go on.
    const before = (await proxies()).find((p) => p.name === 'node-1')!.controlPlane;
    process.kill(await pidOf(before), 'SIGKILL');
    const other = before === 'control-1' ? 'control-2' : 'control-1';
    await eventually(
      async () => {
        const rows = await proxies();
        return rows.length === 2 && rows.every((p) => p.controlPlane === other && p.state === 'SYNCED')
          ? true
          : undefined;
      },
      30_000,
      `both ztunnels on ${other}`,
    );
    await ackedSoon('applies after the replica died');

    // 2. One etcd member of three dies: applies go on.
    process.kill(await pidOf('etcd-1'), 'SIGKILL');
    await ackedSoon('applies with two etcd members');

    // 3. A second member dies: no quorum. Applies are refused, and say why; traffic flows.
    process.kill(await pidOf('etcd-2'), 'SIGKILL');
    const refusedBefore = refused.length;
    await eventually(
      async () => (refused.length >= refusedBefore + 3 ? true : undefined),
      60_000,
      'refusals',
    );
    const refusal = refused.at(-1)!.message;
    assert.match(refusal, /AMBIT_ERR_STORE_(UNAVAILABLE|WRITE)/, refusal);
    assert.match(refusal, /etcd/, refusal);

    // 4. `ambit up --ha` starts what died (both members, the replica): everything converges.
    await ok(['up', '--ha']);
    await ackedSoon('applies after etcd is back');
    applying = false;
    await applies;
    await eventually(
      async () => {
        const r = await admin.call<{ items: Array<{ replica: string; store: { writable: boolean } }> }>(
          'GET',
          '/ambit/v1/replicas',
        );
        return r.items.length === 2 && r.items.every((x) => x.store.writable) ? true : undefined;
      },
      30_000,
      'both replicas back and writable',
    );

    // Every acknowledged apply is on every replica.
    for (const replica of ['control-1', 'control-2']) {
      const one = new AdminClient(`unix:${join(home, replica, 'admin.sock')}`);
      await eventually(
        async () => {
          const { items } = await one.call<{ items: Array<{ metadata: { name: string } }> }>(
            'GET',
            '/apis/security.istio.io/v1/namespaces/ha-probe/authorizationpolicies',
          );
          const names = new Set(items.map((i) => i.metadata.name));
          const missing = acknowledged.filter((i) => !names.has(`probe-${i}`));
          // A refusal that said the change was not made must not have been made.
          const made = refused.filter((r) => /was not made/.test(r.message) && names.has(`probe-${r.i}`));
          assert.deepEqual(made, [], 'a change refused as not made is absent');
          return missing.length === 0 ? true : undefined;
        },
        20_000,
        `every acknowledged apply on ${replica}`,
      );
    }

    // Traffic flowed throughout.
    await writeFile(stopFile, '');
    const result = await load;
    assert.equal(result.code, 0, result.stderr);
    const { ok: served, failures } = JSON.parse(result.stdout) as { ok: number; failures: unknown[] };
    t.diagnostic(
      `requests: ${served} answered, ${failures.length} failed; applies: ${acknowledged.length} acknowledged, ${refused.length} refused`,
    );
    assert.ok(served > 100, `requests were served: ${served}`);
    assert.deepEqual(failures, [], 'no request failed');

    // A policy applied now is enforced at once.
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'AuthorizationPolicy',
          metadata: { name: 'deny-frontend', namespace: 'shop' },
          spec: { selector: { matchLabels: { app: 'frontend' } }, action: 'DENY', rules: [{}] },
        },
      ],
    });
    const appliedAt = Date.now();
    const first = await lab.exec(
      'client',
      [process.execPath, '--input-type=module', '-e', FIRST_FAILURE, 'http://frontend.shop/api/products'],
      { timeoutMs: 40_000 },
    );
    assert.equal(first.code, 0, `the policy was never enforced: ${first.stderr}`);
    t.diagnostic(
      `the DENY policy was enforced ${Number(first.stdout.trim()) - appliedAt} ms after its apply was acknowledged`,
    );
  });
});
