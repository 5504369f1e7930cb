// Sidecar mode in the lab (root): `ambit lab pod add --sidecar` gets the pod its own proxy, started by its
// node, capturing in the pod; a mixed mesh works every way — ambient → sidecar, sidecar → ambient,
// sidecar → sidecar — over mTLS, with L4 policy enforced at whichever proxy serves the destination, and
// plaintext from outside the mesh refused by the sidecar under STRICT. Its own AMBIT_HOME and lab name.

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

/** L4 policy at each destination's proxy: amb refuses side2, side refuses amb's... second identity. */
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

    // mTLS throughout: each destination's proxy saw the caller's identity (Istio's TCP metrics).
    const metrics = async (where: string) =>
      (await lab.exec(where, ['curl', '-s', '--max-time', '5', 'http://127.0.0.1:15020/metrics'])).stdout;
    const sideMetrics = await metrics('side');
    assert.match(
      sideMetrics,
      /istio_tcp_connections_opened_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/mix\/sa\/amb"[^}]*destination_workload="side"[^}]*connection_security_policy="mutual_tls"\}/,
      "side's sidecar, as the destination, saw amb's identity over mutual TLS",
    );
    assert.match(
      sideMetrics,
      /istio_tcp_connections_opened_total\{reporter="source"[^}]*source_workload="side"[^}]*destination_workload="amb"[^}]*connection_security_policy="mutual_tls"\}/,
      "side's sidecar, as the source, reports its call to amb",
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
    const refused = async (from: string, url: string) => {
      await eventually(
        async () => {
          const r = await call(from, url);
          return CURL_RESET.includes(r.code) || r.code === 52 ? true : undefined;
        },
        20_000,
        `${from} → ${url} refused`,
      );
    };
    await refused('side2', 'http://amb.mix/'); // at amb's ztunnel
    await refused('amb', 'http://side.mix/'); // at side's sidecar
    assert.match(
      await metrics('side'),
      /istio_tcp_connections_opened_total\{reporter="destination"[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/mix\/sa\/amb"[^}]*response_flags="DENY"/,
      "side's sidecar denied amb by policy",
    );
    await answers('side', 'http://amb.mix/', 'amb'); // others still pass
    await answers('side2', 'http://side.mix/', 'side');

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
