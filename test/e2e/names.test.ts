// Names and Services as a cluster gives them, as a user meets them (root): after `ambit demo`, a mesh
// pod calls `http://frontend.shop` by name (its DNS captured to its ztunnel's DNS proxy); `dig` against
// the proxy and the cluster DNS (A, AAAA, NXDOMAIN, TCP); a pod outside the mesh reaches the Service's
// VIP (the node's kube-proxy rules) and is reset under STRICT, answered under PERMISSIVE; a denied
// connection is reset. Its own AMBIT_HOME and lab name.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CURL_RESET, cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

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
    const strict = await exec('legacy', [
      'curl',
      '-s',
      '--max-time',
      '5',
      'http://frontend.shop/api/products',
    ]);
    assert.ok(
      CURL_RESET.includes(strict.code),
      `plaintext through the VIP under STRICT is reset: curl ${strict.code} ${strict.stderr}`,
    );
    // A denied connection is reset too (only catalog may call ratings).
    const denied = await exec('client', ['curl', '-s', '--max-time', '5', 'http://ratings.shop/ratings/p1']);
    assert.ok(CURL_RESET.includes(denied.code), `a denied connection is reset: curl ${denied.code}`);

    // PERMISSIVE, applied the way Istio's docs apply it (`-n` for a document without a namespace).
    await ok(['apply', '-n', 'shop', '-f', '-'], PERMISSIVE);
    await eventually(
      async () => {
        const r = await exec('legacy', [
          'curl',
          '-sf',
          '--max-time',
          '5',
          'http://frontend.shop/api/products',
        ]);
        return r.code === 0 ? true : undefined;
      },
      20_000,
      'a pod outside the mesh to reach frontend under PERMISSIVE',
    );
  });
});
