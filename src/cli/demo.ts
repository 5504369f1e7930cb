// `ambit demo`: the storefront across two nodes, enrolled in ambient mode with STRICT mTLS and an
// example policy, and a list of things to try.

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { parseManifests } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { ambitHome, defaultLabName, Lab, type PodSpec } from '../lab/index.ts';
import { CLI_ERRORS } from './errors.ts';
import { haOf, meshUp } from './up.ts';

const MANIFEST = resolve(import.meta.dirname, '../../examples/storefront/mesh.yaml');

const PODS: PodSpec[] = [
  { name: 'client', node: 'node-1', namespace: 'shop', serviceAccount: 'client', labels: { app: 'client' } },
  {
    name: 'frontend',
    node: 'node-1',
    namespace: 'shop',
    serviceAccount: 'frontend',
    labels: { app: 'frontend', version: 'v1' },
  },
  {
    name: 'catalog-v1',
    node: 'node-1',
    namespace: 'shop',
    serviceAccount: 'catalog',
    labels: { app: 'catalog', version: 'v1' },
  },
  {
    name: 'catalog-v2',
    node: 'node-2',
    namespace: 'shop',
    serviceAccount: 'catalog',
    labels: { app: 'catalog', version: 'v2' },
  },
  {
    name: 'ratings',
    node: 'node-2',
    namespace: 'shop',
    serviceAccount: 'ratings',
    labels: { app: 'ratings', version: 'v1' },
  },
  // A client outside the mesh (its namespace is not enrolled): it reaches Services through their VIPs
  // as any pod on a cluster does, and STRICT mTLS refuses its plaintext.
  {
    name: 'legacy',
    node: 'node-2',
    namespace: 'legacy',
    serviceAccount: 'default',
    labels: { app: 'legacy' },
  },
];

async function waitServing(lab: Lab, pod: string, url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await lab.exec(pod, ['curl', '-sf', '-o', '/dev/null', '--max-time', '2', url]);
    if (r.code === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new AmbitError(
    CLI_ERRORS.DEMO_TIMEOUT,
    `${url} did not answer from ${pod}; see the pod logs in $AMBIT_HOME/labs/lab/logs`,
  );
}

export async function runDemo(): Promise<void> {
  // On a mesh that is already up, use it as it is (whatever its node count); else bring up two nodes.
  const current = await new Lab({ home: ambitHome(), name: defaultLabName() }).status();
  // On the mesh that runs, whatever its shape (an HA control plane stays one).
  const { lab, admin } = await meshUp({ nodes: current?.nodes.length ?? 2, ha: haOf(current) });
  const existing = new Set((await lab.status())?.pods.map((p) => p.name));
  for (const pod of PODS) if (!existing.has(pod.name)) await lab.addPod(pod);
  const { resources } = parseManifests(await readFile(MANIFEST, 'utf8'), MANIFEST);
  await admin.call('POST', '/ambit/v1/apply', { objects: resources });
  const vip = async (name: string) => {
    for (let i = 0; i < 50; i++) {
      const { items } = await admin.call<{ items: Array<{ name: string; vips: string[] }> }>(
        'GET',
        '/ambit/v1/services?namespace=shop',
      );
      const v = items.find((s) => s.name === name)?.vips[0];
      if (v) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new AmbitError(CLI_ERRORS.DEMO_TIMEOUT, `service ${name} got no VIP from the control plane`);
  };
  const [catalog, ratings] = [await vip('catalog'), await vip('ratings')];
  const running = new Set(
    (await lab.status())?.pods.filter((p) => p.processes.some((x) => x.running)).map((p) => p.name),
  );
  const start = async (pod: string, args: string[]) => {
    if (!running.has(pod)) await lab.run(pod, ['ambit', 'sample', 'storefront', ...args, '--port', '8080']);
  };
  await start('ratings', ['ratings']);
  await start('catalog-v1', ['catalog', '--ratings', `http://${ratings}`]);
  await start('catalog-v2', ['catalog', '--ratings', `http://${ratings}`]);
  await start('frontend', ['frontend', '--catalog', `http://${catalog}`]);
  // By name: the pod's DNS goes through its ztunnel's DNS proxy, which answers from the mesh's services.
  await waitServing(lab, 'client', 'http://frontend.shop/healthz');
}

export function demoCommand(): Command {
  return new Command('demo')
    .description('bring up the meshed storefront (STRICT mTLS, an example policy) and print what to try')
    .action(async () => {
      await runDemo();
      console.log(`The storefront is up in namespace "shop", meshed in ambient mode (STRICT mTLS).

Try:
  npx ambit lab exec client -- curl -s http://frontend.shop/api/products        # frontend → catalog v1 or v2 → ratings, over mTLS
  npx ambit get workloads -n shop                                               # identities, nodes, mesh state
  npx ambit get services -n shop                                                # VIPs and endpoints
  npx ambit ztunnel-config certificates --node node-1                           # one certificate per identity
  npx ambit lab exec node-2 -- curl -s http://127.0.0.1:15020/metrics | grep istio_tcp
  npx ambit lab exec client -- curl -s --max-time 3 http://ratings.shop/ratings/p1   # reset: only catalog may call ratings
  npx ambit lab exec legacy -- curl -s --max-time 3 http://frontend.shop/api/products   # reset: outside the mesh, and shop is STRICT
  npx ambit lab exec client -- dig +short frontend.shop.svc.cluster.local      # the ztunnel's DNS proxy answers the VIP
  npx ambit describe workload ratings -n shop                                   # the policy that applies, and why
  npx ambit waypoint apply -n shop --enroll-namespace --wait                    # L7: requests, routes, request metrics
  npx ambit lab run client -- sh -c 'while :; do curl -s -o /dev/null http://frontend.shop/api/products; sleep 0.5; done'
                                                                                # steady traffic (lab processes stop with ambit down)
  npx ambit dashboard                                                           # the service graph and golden signals, in a browser
  npx ambit stat ns/shop                                                        # success rate, requests/s, latency per workload

Tear it down with: npx ambit down`);
    });
}
