// Names and Services as a cluster gives them, as a user meets them (root): after `ambit demo`, a mesh
// pod calls `http://frontend.shop` by name (its DNS captured to its ztunnel's DNS proxy); `dig` against
// the proxy and the cluster DNS (A, AAAA, NXDOMAIN, TCP); a pod outside the mesh reaches the Service's
// VIP (the node's kube-proxy rules) and is reset under STRICT, answered under PERMISSIVE; a denied
// connection is reset. Its own AMBIT_HOME and lab name.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CURL_RESET, cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

/** A host outside the mesh (a pod in a namespace that is not enrolled), known by name as the mesh's. */
const serviceEntry = (address: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: outside-api
  namespace: shop
spec:
  hosts: [api.outside.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
    - { number: 80, name: http, protocol: HTTP, targetPort: 8080 }
  endpoints:
    - address: ${address}
`;

const REGISTRY_ONLY = `apiVersion: ambit.dev/v1alpha1
kind: MeshConfig
metadata:
  name: default
spec:
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
`;

const PERMISSIVE = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
spec:
  mtls:
    mode: PERMISSIVE
`;

describe('cluster names and Service VIPs', {
  skip: !isRoot && 'NOT ROOT: lab end-to-end tests need root (CI runs them as root)',
}, () => {
  test('the storefront by name, from the mesh and from outside it', async (t) => {
    if (skipUnlessRoot(t)) return;
    const cli = await cliLab('n');
    const { lab } = cli;
    const ok = async (args: string[], input?: string) => (await cli.ok(args, input)).stdout;
    t.after(cli.down);
    await ok(['demo']);
    const services = JSON.parse(await ok(['get', 'services', '-n', 'shop', '-o', 'json'])) as {
      items: Array<{ name: string; vips: string[] }>;
    };
    const frontendVip = services.items.find((s) => s.name === 'frontend')!.vips[0]!;
    const exec = (pod: string, argv: string[]) => lab.exec(pod, argv, { timeoutMs: 30_000 });
    const dig = async (pod: string, args: string[]) => {
      const r = await exec(pod, ['dig', '+time=2', '+tries=1', ...args]);
      assert.equal(r.code, 0, `dig ${args.join(' ')} from ${pod}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    const status = (out: string) => /status: ([A-Z]+)/.exec(out)?.[1];
    const answers = (out: string) => [...out.matchAll(/^\S+\s+\d+\s+IN\s+A\s+(\S+)$/gm)].map((m) => m[1]);

    // The Done-when of issue 13, as written.
    const products = await exec('client', [
      'curl',
      '-s',
      '--max-time',
      '5',
      'http://frontend.shop/api/products',
    ]);
    assert.equal(products.code, 0, `curl http://frontend.shop/api/products: ${products.stderr}`);
    assert.match(products.stdout, /"products"|\[/, products.stdout);

    // The client's DNS goes to its ztunnel (captured), which answers from the mesh's services.
    const short = await dig('client', ['+search', 'frontend']);
    assert.deepEqual(answers(short), [frontendVip], short);
    assert.match(short, /flags:[^;]*\baa\b/, 'the ztunnel answers with authority');
    const full = await dig('client', ['frontend.shop.svc.cluster.local']);
    assert.deepEqual(answers(full), [frontendVip], full);
    const tcp = await dig('client', ['+tcp', 'frontend.shop.svc.cluster.local']);
    assert.deepEqual(answers(tcp), [frontendVip], tcp);
    const aaaa = await dig('client', ['AAAA', 'frontend.shop.svc.cluster.local']);
    assert.equal(status(aaaa), 'NOERROR', aaaa);
    assert.deepEqual(answers(aaaa), [], 'no IPv6 address: an empty answer');
    // A name the mesh does not know is forwarded to the cluster DNS, which knows it does not exist.
    const missing = await dig('client', ['nosuch.shop.svc.cluster.local']);
    assert.equal(status(missing), 'NXDOMAIN', missing);
    // Straight at the node's DNS proxy (15053 on the node), and its metrics.
    const direct = await dig('node-1', ['@198.18.1.1', '-p', '15053', 'catalog.shop.svc.cluster.local']);
    assert.equal(answers(direct).length, 1, direct);
    const metrics = await exec('node-1', ['curl', '-s', 'http://127.0.0.1:15020/metrics']);
    assert.match(metrics.stdout, /^istio_dns_requests_total(\{[^}]*\})? [1-9]/m, 'DNS requests are counted');
    assert.match(
      metrics.stdout,
      /^istio_dns_upstream_requests_total(\{[^}]*\})? [1-9]/m,
      'forwarded are counted',
    );

    // Outside the mesh: the cluster DNS answers, the node's rules take the VIP to an endpoint, and
    // STRICT resets the plaintext.
    const legacyDig = await dig('legacy', ['+search', 'frontend.shop']);
    assert.deepEqual(answers(legacyDig), [frontendVip], legacyDig);
    const external = await dig('legacy', ['example.com']);
    assert.equal(status(external), 'REFUSED', 'the lab asks nothing beyond itself');
    // From the other node (legacy), and from the frontend's own node (legacy-1: the node's rules send
    // it to the ztunnel's inbound listener, which resolves the VIP to the local frontend).
    await lab.addPod({ name: 'legacy-1', node: 'node-1', namespace: 'legacy' });
    const toFrontend = ['curl', '-s', '--max-time', '5', 'http://frontend.shop/api/products'];
    for (const pod of ['legacy', 'legacy-1']) {
      const strict = await exec(pod, toFrontend);
      assert.ok(
        CURL_RESET.includes(strict.code),
        `plaintext from ${pod} through the VIP under STRICT is reset: curl ${strict.code} ${strict.stderr}`,
      );
    }
    // A denied connection is reset too (only catalog may call ratings).
    const denied = await exec('client', ['curl', '-s', '--max-time', '5', 'http://ratings.shop/ratings/p1']);
    assert.ok(CURL_RESET.includes(denied.code), `a denied connection is reset: curl ${denied.code}`);

    // PERMISSIVE, applied the way Istio's docs apply it (`-n` for a document without a namespace).
    await ok(['apply', '-n', 'shop', '-f', '-'], PERMISSIVE);
    for (const pod of ['legacy', 'legacy-1']) {
      await eventually(
        async () => ((await exec(pod, toFrontend)).code === 0 ? true : undefined),
        20_000,
        `${pod}, outside the mesh, to reach frontend under PERMISSIVE`,
      );
    }

    // The outside world: a server in a namespace outside the mesh, reached by a ServiceEntry's name.
    const web = await lab.addPod({ name: 'web', node: 'node-2', namespace: 'outside' });
    await lab.run('web', ['ambit', 'sample', 'echo', '--port', '8080']);
    const toWeb = ['curl', '-s', '--max-time', '3', `http://${web.address}:8080/`];
    const byName = ['curl', '-s', '--max-time', '3', 'http://api.outside.test/'];
    await eventually(
      async () => ((await exec('client', toWeb)).code === 0 ? true : undefined),
      20_000,
      'the outside server to answer (ALLOW_ANY: a mesh pod may reach any address)',
    );
    await ok(['apply', '-f', '-'], serviceEntry(web.address));
    const reply = await eventually(
      async () => {
        const r = await exec('client', byName);
        return r.code === 0 ? r.stdout : undefined;
      },
      20_000,
      'api.outside.test to answer by name',
    );
    assert.match(reply, /"pod":\s*"web"/, reply);
    const seDig = await dig('client', ['api.outside.test']);
    assert.equal(answers(seDig).length, 1, `the ztunnel gives the ServiceEntry an address: ${seDig}`);
    assert.match(answers(seDig)[0]!, /^198\.19\./, 'auto-allocated from the VIP range');

    // REGISTRY_ONLY. A lab pod is in the registry, as a cluster's pods are in Istio's; a server in the
    // lab's infrastructure namespace (198.18.0.254, no workload's) stands for the internet.
    await lab.run('control', ['ambit', 'sample', 'echo', '--port', '8081']);
    const toInternet = ['curl', '-s', '--max-time', '3', 'http://198.18.0.254:8081/'];
    await eventually(
      async () => ((await exec('client', toInternet)).code === 0 ? true : undefined),
      20_000,
      'the server outside the registry to answer under ALLOW_ANY',
    );
    await ok(['apply', '-f', '-'], REGISTRY_ONLY);
    await eventually(
      async () => (CURL_RESET.includes((await exec('client', toInternet)).code) ? true : undefined),
      20_000,
      'an address outside the registry to be reset under REGISTRY_ONLY',
    );
    const still = await exec('client', byName);
    assert.equal(
      still.code,
      0,
      `a ServiceEntry's host is in the registry: curl ${still.code} ${still.stderr}`,
    );
    const pod = await exec('client', toWeb);
    assert.equal(pod.code, 0, `a pod is in the registry: curl ${pod.code} ${pod.stderr}`);
  });
});
