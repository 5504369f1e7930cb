// Sidecar mode in the lab (root): `ambit lab pod add --sidecar` gets the pod its own proxy, started by its
// node, capturing in the pod; a mixed mesh works every way — ambient → sidecar, sidecar → ambient,
// sidecar → sidecar — over mTLS, with policy enforced at whichever proxy serves the destination (L4 at a
// ztunnel, per request at a sidecar for its HTTP ports), routes applied by a sidecar client, Istio's
// request metrics from both sidecars, and plaintext from outside the mesh refused by the sidecar under
// STRICT. Its own AMBIT_HOME and lab name.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CURL_RESET, cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

const MESH = `
apiVersion: v1
kind: Namespace
metadata: { name: mix, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Namespace
metadata: { name: outside }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: mix }
spec: { mtls: { mode: STRICT } }
---
apiVersion: v1
kind: Service
metadata: { name: amb, namespace: mix }
spec: { selector: { app: amb }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: side, namespace: mix }
spec: { selector: { app: side }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: side2, namespace: mix }
spec: { selector: { app: side2 }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
`;

/** A host outside the cluster's DNS: only a proxy's DNS proxy answers it (with its allocated VIP). */
const SERVICE_ENTRY = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: outside-api, namespace: mix }
spec:
  hosts: [api.outside.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 8080 }]
  endpoints: [{ address: 198.18.3.3 }]
`;

/**
 * Policy at each destination's proxy: amb's ztunnel refuses side2's connections (L4); side's sidecar
 * refuses amb's requests (per request, 403); side2's sidecar lets only GET /public/* in (L7 attributes).
 */
const DENY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: amb-not-from-side2, namespace: mix }
spec:
  selector: { matchLabels: { app: amb } }
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/mix/sa/side2"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: side-not-from-amb, namespace: mix }
spec:
  selector: { matchLabels: { app: side } }
  action: DENY
  rules: [{ from: [{ source: { principals: ["cluster.local/ns/mix/sa/amb"] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: side2-public, namespace: mix }
spec:
  selector: { matchLabels: { app: side2 } }
  action: ALLOW
  rules: [{ to: [{ operation: { methods: ["GET"], paths: ["/public/*"] } }] }]
`;

/** A producer route on amb: requests with \`x-to: side2\` go to side2. Only a client's sidecar applies it (amb has no waypoint). */
const ROUTE = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: amb-split, namespace: mix }
spec:
  parentRefs: [{ group: "", kind: Service, name: amb, port: 80 }]
  rules:
    - matches: [{ headers: [{ name: x-to, value: side2 }] }]
      backendRefs: [{ name: side2, port: 80 }]
    - backendRefs: [{ name: amb, port: 80 }]
`;

describe('sidecar mode', {
  skip: !isRoot && 'NOT ROOT: sidecar end-to-end tests need root (CI runs them as root)',
}, () => {
  test('a mixed mesh: ambient and sidecar pods call each other over mTLS, policy enforced both ways', async (t) => {
    if (skipUnlessRoot(t)) return;
    const cli = await cliLab('s');
    const { lab, ok } = cli;
    t.after(cli.down);

    await ok(['up']);
    await ok(['apply', '-f', '-'], MESH);
    const pod = (name: string, node: string, ns: string, sidecar: boolean) =>
      ok([
        'lab',
        'pod',
        'add',
        name,
        '--node',
        node,
        '--namespace',
        ns,
        '--service-account',
        name,
        '--labels',
        `app=${name}`,
        ...(sidecar ? ['--sidecar'] : []),
      ]);
    await pod('amb', 'node-1', 'mix', false);
    await pod('side', 'node-2', 'mix', true);
    await pod('side2', 'node-1', 'mix', true); // a sidecar on the same node as an ambient pod
    await pod('legacy', 'node-2', 'outside', false);
    for (const p of ['amb', 'side', 'side2']) await lab.run(p, ['ambit', 'sample', 'echo', '--port', '8080']);

    // Each mode as the registry says, and each sidecar's proxy started by its node, in its pod.
    const workloads = JSON.parse((await ok(['get', 'workloads', '-n', 'mix', '-o', 'json'])).stdout) as {
      items: Array<{ name: string; enrolled: boolean; sidecar?: boolean }>;
    };
    const mode = (n: string) => workloads.items.find((w) => w.name === n);
    assert.equal(mode('amb')?.sidecar, false);
    assert.equal(mode('side')?.sidecar, true);
    assert.match(
      (await ok(['get', 'workloads', '-n', 'mix'])).stdout,
      /\n\s*mix\s+side\s+\S+\s+node-2\s+\S+\s+sidecar\b/,
    );
    await eventually(
      async () => {
        const s = await lab.status();
        const running = (p: string) =>
          s?.pods.find((x) => x.name === p)?.processes.some((x) => x.running && x.command[1] === 'sidecar');
        return running('side') && running('side2') ? true : undefined;
      },
      30_000,
      'the sidecars started by their nodes',
    );
    // Each sidecar is its own proxy to the control plane, named as Istio's proxy-status names one.
    await eventually(
      async () => {
        const out = (await ok(['proxy-status'])).stdout;
        return /^side\.mix\s+sidecar\s+SYNCED/m.test(out) && /^side2\.mix\s+sidecar\s+SYNCED/m.test(out)
          ? true
          : undefined;
      },
      20_000,
      'the sidecars SYNCED in proxy-status',
    );
    // The in-pod rules are in the sidecar pods; once they are, the node's capture lets the pod go.
    await eventually(
      async () =>
        (await lab.exec('side', ['nft', 'list', 'table', 'ip', 'ambit_sidecar'])).code === 0
          ? true
          : undefined,
      20_000,
      "side's in-pod capture rules",
    );
    const addressOf = async (p: string) =>
      (await lab.status())?.pods.find((x) => x.name === p)?.address ?? '';
    const [sideIp, ambIp] = [await addressOf('side'), await addressOf('amb')];
    await eventually(
      async () => {
        const set = (await lab.exec('node-2', ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled'])).stdout;
        return set.includes(sideIp) ? undefined : true;
      },
      20_000,
      "node-2's capture to let side go",
    );
    const node1Set = (await lab.exec('node-1', ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled'])).stdout;
    assert.ok(node1Set.includes(ambIp), `node-1 captures amb (${ambIp}): ${node1Set}`);

    const call = async (from: string, url: string) => {
      const r = await lab.exec(from, ['curl', '-s', '--max-time', '5', url]);
      return r;
    };
    const answers = async (from: string, url: string, pod: string) => {
      await eventually(
        async () => {
          const r = await call(from, url);
          return r.code === 0 && r.stdout.includes(`"pod":"${pod}"`) ? true : undefined;
        },
        30_000,
        `${from} → ${url} answered by ${pod}`,
      );
    };
    await answers('amb', 'http://side.mix/', 'side'); // ambient → sidecar (cross-node)
    await answers('side', 'http://amb.mix/', 'amb'); // sidecar → ambient (cross-node)
    await answers('side', 'http://side2.mix/', 'side2'); // sidecar → sidecar (cross-node)
    await answers('side2', 'http://amb.mix/', 'amb'); // sidecar → ambient (same node)
    await answers('amb', 'http://side2.mix/', 'side2'); // ambient → sidecar (same node)

    // mTLS throughout: each destination's proxy saw the caller's identity. The ports are HTTP, so a sidecar
    // reports requests (Istio's request metrics), a ztunnel connections (its TCP metrics).
    const metrics = async (where: string) =>
      (await lab.exec(where, ['curl', '-s', '--max-time', '5', 'http://127.0.0.1:15020/metrics'])).stdout;
    const sideMetrics = await metrics('side');
    assert.match(
      sideMetrics,
      /istio_requests_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/mix\/sa\/amb"[^}]*destination_workload="side"[^}]*response_code="200"[^}]*connection_security_policy="mutual_tls"\}/,
      "side's sidecar, as the destination, saw amb's identity over mutual TLS",
    );
    assert.match(
      sideMetrics,
      /istio_requests_total\{reporter="source"[^}]*source_workload="side"[^}]*destination_workload="amb"[^}]*destination_principal="spiffe:\/\/cluster.local\/ns\/mix\/sa\/amb"[^}]*destination_service="amb.mix.svc.cluster.local"[^}]*request_protocol="http"[^}]*response_code="200"[^}]*connection_security_policy="mutual_tls"/,
      "side's sidecar, as the source, reports its requests to amb",
    );
    assert.doesNotMatch(
      sideMetrics,
      /istio_tcp_connections_opened_total\{reporter="source"[^}]*destination_workload="amb"/,
      'an HTTP port is not counted as TCP by a sidecar, as with Istio',
    );
    const nodeMetrics = await metrics('node-1');
    assert.match(
      nodeMetrics,
      /istio_tcp_connections_opened_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/mix\/sa\/side"[^}]*destination_workload="amb"[^}]*connection_security_policy="mutual_tls"\}/,
      "amb's ztunnel saw side's identity over mutual TLS",
    );
    assert.doesNotMatch(
      nodeMetrics,
      /reporter="source"[^}]*source_workload="side2"/,
      "node-1's ztunnel never carried side2's outgoing traffic: its sidecar did",
    );

    // Its admin, as a ztunnel's, on a socket of its own in its node's data directory: the one certificate
    // it holds is its workload's.
    const certs = JSON.parse(
      (
        await ok([
          'ztunnel-config',
          'certificates',
          '--socket',
          join(cli.home, 'nodes', 'node-2', 'sidecars', 'mix.side.sock'),
          '-o',
          'json',
        ])
      ).stdout,
    ) as Array<{ identity: string; serial?: string }>;
    assert.deepEqual(
      certs.map((c) => c.identity),
      ['spiffe://cluster.local/ns/mix/sa/side'],
    );

    // The pod's DNS goes to its sidecar's DNS proxy, which knows the mesh's ServiceEntry hosts (the
    // cluster DNS does not); other names are forwarded to the pod's resolvers.
    await ok(['apply', '-f', '-'], SERVICE_ENTRY);
    const resolved = await eventually(
      async () => {
        const r = await lab.exec('side', ['dig', '+short', '+time=2', '+tries=1', 'api.outside.test']);
        return /^198\.19\.\d+\.\d+$/m.test(r.stdout) ? r.stdout.trim() : undefined;
      },
      20_000,
      "side's DNS proxy to answer a ServiceEntry host",
    );
    assert.match(resolved, /^198\.19\./);
    const viaUpstream = await lab.exec('side', [
      'dig',
      '+short',
      '+time=2',
      '+tries=1',
      'amb.mix.svc.cluster.local',
    ]);
    assert.match(viaUpstream.stdout, /^198\.19\.\d+\.\d+$/m);

    // Prometheus finds each sidecar as Istio's sample finds one: the pod's own 15020.
    const targets = await eventually(
      async () => {
        const text = await readFile(join(cli.home, 'control', 'prometheus', 'sidecars.json'), 'utf8').catch(
          () => '[]',
        );
        const groups = JSON.parse(text) as Array<{ targets: string[]; labels: Record<string, string> }>;
        return groups.length === 2 ? groups : undefined;
      },
      10_000,
      'both sidecars in the Prometheus target file',
    );
    assert.deepEqual(targets.map((g) => g.labels.pod).sort(), ['side', 'side2']);
    assert.ok(targets.every((g) => g.targets[0]?.endsWith(':15020')));

    // Policy, enforced by whichever proxy serves the destination.
    await ok(['apply', '-f', '-'], DENY);
    const status = async (from: string, url: string) => {
      const r = await lab.exec(from, ['curl', '-s', '--max-time', '5', '-w', '\n%{http_code}', url]);
      return { code: r.code, status: r.stdout.slice(r.stdout.lastIndexOf('\n') + 1), body: r.stdout };
    };
    // At amb's ztunnel, which refuses side2's tunnel: side2's sidecar answers 503, as Envoy does when its
    // upstream connection fails.
    await eventually(
      async () => ((await status('side2', 'http://amb.mix/')).status === '503' ? true : undefined),
      20_000,
      "side2 → amb refused at amb's ztunnel",
    );
    assert.match(
      await metrics('node-1'),
      /istio_tcp_connections_opened_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/mix\/sa\/side2"[^}]*destination_workload="amb"[^}]*response_flags="DENY"/,
      "amb's ztunnel denied side2's connection by policy",
    );
    // At side's sidecar, per request, as Envoy's RBAC filter answers.
    const denied = await eventually(
      async () => {
        const r = await status('amb', 'http://side.mix/');
        return r.status === '403' ? r : undefined;
      },
      20_000,
      "amb → side refused by side's sidecar",
    );
    assert.match(denied.body, /^RBAC: access denied/);
    assert.match(
      await metrics('side'),
      /istio_requests_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/mix\/sa\/amb"[^}]*response_code="403"/,
      "side's sidecar denied amb by policy",
    );
    await answers('side', 'http://amb.mix/', 'amb'); // others still pass
    await answers('side2', 'http://side.mix/', 'side');
    // L7 attributes at side2's sidecar: GET /public/* only.
    await eventually(
      async () => ((await status('side', 'http://side2.mix/private')).status === '403' ? true : undefined),
      20_000,
      "side2's sidecar to refuse a path its policy does not allow",
    );
    assert.equal((await status('side', 'http://side2.mix/public/x')).status, '200');
    assert.equal((await status('amb', 'http://side2.mix/public/x')).status, '200');
    const post = await lab.exec('side', [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-X',
      'POST',
      'http://side2.mix/public/x',
    ]);
    assert.equal(post.stdout, '403', 'POST is not allowed');
    await ok(['delete', 'authorizationpolicy', 'side2-public', '-n', 'mix']);

    // Routes at a sidecar client: side's sidecar applies amb's HTTPRoute; amb (ambient, no waypoint) does not.
    await ok(['apply', '-f', '-'], ROUTE);
    await eventually(
      async () => {
        const r = await lab.exec('side', [
          'curl',
          '-s',
          '--max-time',
          '5',
          '-H',
          'x-to: side2',
          'http://amb.mix/',
        ]);
        return r.stdout.includes('"pod":"side2"') ? true : undefined;
      },
      20_000,
      "side's sidecar to route x-to: side2 to side2",
    );
    assert.match((await call('side', 'http://amb.mix/')).stdout, /"pod":"amb"/);
    assert.match(
      await metrics('side'),
      /istio_requests_total\{reporter="source"[^}]*source_workload="side"[^}]*destination_workload="side2"[^}]*destination_service="side2.mix.svc.cluster.local"/,
      'the routed requests are counted against the backend that served them',
    );

    // Plaintext from outside the mesh, to the sidecar pod's own address: refused under STRICT.
    const sideAddress = (await lab.status())?.pods.find((p) => p.name === 'side')?.address;
    const plain = await call('legacy', `http://${sideAddress}:8080/`);
    assert.ok(
      CURL_RESET.includes(plain.code) || plain.code === 52,
      `plaintext refused: curl exit ${plain.code}`,
    );
    assert.match(
      await metrics('side'),
      /istio_tcp_connections_opened_total\{reporter="destination"[^}]*source_workload="legacy"[^}]*response_flags="DENY"/,
    );

    // A namespace labelled for injection puts its pods in sidecar mode; taking the label off gives the pods
    // back to their node's ztunnel (ambient). flip's sidecar is alive: it removes its rules and stops.
    // flop's has died just before: its node removes the rules it left. Neither is started again.
    const injected = (labels: string) => `
apiVersion: v1
kind: Namespace
metadata: { name: inj, labels: { ${labels} } }
---
apiVersion: v1
kind: Service
metadata: { name: flip, namespace: inj }
spec: { selector: { app: flip }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: flop, namespace: inj }
spec: { selector: { app: flop }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
`;
    await ok(['apply', '-f', '-'], injected('istio.io/dataplane-mode: ambient, istio-injection: enabled'));
    for (const p of ['flip', 'flop']) {
      await pod(p, 'node-2', 'inj', false);
      await lab.run(p, ['ambit', 'sample', 'echo', '--port', '8080']);
    }
    const sidecarOf = async (p: string) =>
      (await lab.status())?.pods
        .find((x) => x.name === p)
        ?.processes.find((x) => x.running && x.command[1] === 'sidecar');
    const rulesIn = async (p: string) =>
      (await lab.exec(p, ['nft', 'list', 'table', 'ip', 'ambit_sidecar'])).code === 0;
    for (const p of ['flip', 'flop']) {
      await eventually(async () => ((await sidecarOf(p)) ? true : undefined), 30_000, `${p}'s sidecar`);
      await answers('amb', `http://${p}.inj/`, p);
    }
    process.kill((await sidecarOf('flop'))!.pid, 'SIGKILL');
    await ok(['apply', '-f', '-'], injected('istio.io/dataplane-mode: ambient'));
    for (const p of ['flip', 'flop']) {
      await eventually(
        async () => ((await sidecarOf(p)) ? undefined : true),
        30_000,
        `${p}'s sidecar to stop`,
      );
      await eventually(
        async () => ((await rulesIn(p)) ? undefined : true),
        15_000,
        `${p}'s in-pod rules gone`,
      );
      await answers('amb', `http://${p}.inj/`, p); // now through their node's ztunnel
    }
    await new Promise((r) => setTimeout(r, 3000)); // longer than the node agent's 2 s pass
    assert.equal(await sidecarOf('flip'), undefined, 'the node does not start it again');
    assert.equal(await sidecarOf('flop'), undefined, 'nor the one that died');
  });
});
