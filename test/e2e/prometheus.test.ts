// Prometheus compatibility, proven with a real Prometheus (root), out of the box: `ambit up`, the demo
// with a waypoint, traffic through it (some of it aborted 503 by an HTTPFault) and plain TCP between
// ztunnels, then Debian's `prometheus` server run with what `ambit prometheus config` prints, unedited,
// in the lab's bridge namespace (the infrastructure range, where the nodes' metrics are open and the
// control plane's admin listener is on loopback, read with the token `ambit up` saved). The queries are
// those of Istio's Mesh, Service and Workload dashboards, with only their Grafana variables filled in.
// Scaling the waypoint adds a target without restarting Prometheus; `ambit down` takes the token back.
// Its own AMBIT_HOME, lab name and Prometheus storage; everything is torn down even on failure.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { EmbeddedStore, readInternal } from '../../src/control/store/index.ts';
import { CONTROL_ADDRESS, CONTROL_TARGET, labNames } from '../../src/lab/index.ts';
import { cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

/** Prometheus listens on loopback of the lab's own bridge namespace, where nothing else uses this port. */
const PROM = 'http://127.0.0.1:9090';
const GATEWAY_NAME = 'gateway.networking.k8s.io/gateway-name';

/** catalog's requests under /fail are aborted 503 by the waypoint (Envoy's fault filter, flags FI). */
const FAULT = `
apiVersion: ambit.dev/v1alpha1
kind: HTTPFault
metadata: { name: fail, namespace: shop }
spec:
  abort: { httpStatus: 503 }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: catalog-fail, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: catalog, port: 80 }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /fail } }]
      filters: [{ type: ExtensionRef, extensionRef: { group: ambit.dev, kind: HTTPFault, name: fail } }]
      backendRefs: [{ name: catalog, port: 80 }]
    - backendRefs: [{ name: catalog, port: 80 }]
`;

/**
 * From the client pod, for MS milliseconds: the storefront through the waypoint, catalog's /fail (503)
 * and catalog-v1's pod address directly (plain TCP between ztunnels: a service waypoint is not on a
 * workload-addressed path). A new connection per request, so the ztunnels record bytes as they go.
 */
const TRAFFIC = `
import { get } from 'node:http';
const [frontend, catalog, direct, ms] = process.argv.slice(1);
const once = (url) => new Promise((done) => {
  get(url, { agent: false }, (res) => { res.resume(); res.on('end', () => done(String(res.statusCode))); })
    .on('error', (e) => done(e.code ?? 'error'));
});
const urls = [frontend + '/api/products', catalog + '/products', catalog + '/fail', direct + '/products'];
const seen = {};
const started = Date.now();
for (let i = 0; Date.now() - started < Number(ms); i++) {
  const url = urls[i % urls.length];
  const status = await once(url);
  seen[url] ??= {};
  seen[url][status] = (seen[url][status] ?? 0) + 1;
}
console.log(JSON.stringify({ started, ended: Date.now(), seen }));
`;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('Prometheus scrapes the mesh', {
  skip: !isRoot && 'NOT ROOT: the Prometheus end-to-end test needs root (CI runs it as root)',
}, () => {
  test("Istio's dashboard queries answer from a real Prometheus; a new waypoint replica is found", async (t) => {
    if (skipUnlessRoot(t)) return;
    const cli = await cliLab('p');
    const { home, name, lab, ok } = cli;
    let prometheus: ChildProcess | undefined;
    const stopPrometheus = async () => {
      if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
        const gone = new Promise((r) => prometheus!.once('exit', r));
        prometheus.kill('SIGTERM');
        await gone;
      }
    };
    t.after(async () => {
      await stopPrometheus();
      await cli.down();
    });

    // Out of the box: `ambit up` gives the control plane a TCP admin listener on the bridge namespace's
    // loopback and saves a token for Prometheus; the demo's own `up` keeps that token.
    await ok(['up']);
    const tokenFile = join(home, 'prometheus-token');
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600, 'the token file is for root only');
    const token = await readFile(tokenFile, 'utf8');
    await ok(['demo']);
    assert.equal(await readFile(tokenFile, 'utf8'), token, '`ambit demo` on a running mesh keeps the token');
    await ok(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace', '--wait']);
    await ok(['apply', '-f', '-'], FAULT);
    const printed = await ok(['prometheus', 'config', '--scrape-interval', '1s']);
    assert.doesNotMatch(printed.stderr, /⚠️/, 'nothing to warn about: targets, control plane listener, token');
    assert.match(printed.stdout, new RegExp(`credentials_file: ${tokenFile}\\n`));
    const configFile = join(home, 'prometheus.yml');
    await writeFile(configFile, printed.stdout);

    // The listener is the bridge namespace's own: a node (and so a pod, and the host) cannot reach it.
    const fromNode = await lab.exec('node-1', [
      'curl',
      '-s',
      '--max-time',
      '2',
      '-o',
      '/dev/null',
      `http://${CONTROL_ADDRESS}:15014/healthz/ready`,
    ]);
    assert.equal(
      fromNode.code,
      7,
      `a node cannot connect to the control plane's admin port: ${fromNode.stderr}`,
    );

    prometheus = spawn(
      'nsenter',
      [
        `--net=/run/netns/${labNames(name).net}`,
        'prometheus',
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(home, 'prometheus-data')}`,
        `--web.listen-address=${new URL(PROM).host}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let promLog = '';
    prometheus.stderr?.on('data', (b) => (promLog = (promLog + b).slice(-4000)));

    const api = async (path: string, params: Record<string, string> = {}) => {
      const args = Object.entries(params).flatMap(([k, v]) => ['--data-urlencode', `${k}=${v}`]);
      const r = await lab.exec(CONTROL_TARGET, [
        'curl',
        '-s',
        '--max-time',
        '5',
        '--get',
        ...args,
        `${PROM}${path}`,
      ]);
      if (r.code !== 0) return undefined;
      const body = JSON.parse(r.stdout) as { status: string; data: unknown; error?: string };
      assert.equal(body.status, 'success', `${path} ${JSON.stringify(params)}: ${body.error}`);
      return body.data;
    };
    const query = async (q: string, time?: number) =>
      (
        (await api('/api/v1/query', { query: q, ...(time ? { time: String(time) } : {}) })) as {
          result: Sample[];
        }
      ).result;
    const upTargets = async () => {
      const result = await query('up').catch(() => [] as Sample[]);
      return result.filter((s) => s.value[1] === '1').map((s) => `${s.metric.job}/${s.metric.pod}`);
    };
    const waypointPods = async () =>
      ((await lab.status())?.pods ?? [])
        .filter((p) => p.labels[GATEWAY_NAME] === 'waypoint')
        .map((p) => p.name);

    // Every target is up: the control plane (istiod), each node's ztunnel and the waypoint replica.
    const [replica] = await waypointPods();
    assert.ok(replica, 'the waypoint runs as a pod of the lab');
    const expected = [
      'istiod/ambit-control',
      'kubernetes-pods/ztunnel-node-1',
      'kubernetes-pods/ztunnel-node-2',
    ];
    await eventually(
      async () => {
        const up = await upTargets();
        return [...expected, `kubernetes-pods/${replica}`].every((x) => up.includes(x)) ? true : undefined;
      },
      30_000,
      `every target up in Prometheus (its log: ${promLog})`,
    );
    const up = await query('up');
    const istiod = up.find((s) => s.metric.job === 'istiod');
    assert.deepEqual(
      { app: istiod?.metric.app, namespace: istiod?.metric.namespace, value: istiod?.value[1] },
      { app: 'istiod', namespace: 'ambit-system', value: '1' },
    );
    const wp = up.find((s) => s.metric.pod === replica);
    assert.equal(wp?.metric.namespace, 'shop');
    assert.equal(wp?.metric.gateway_networking_k8s_io_gateway_name, 'waypoint');
    assert.match(wp?.metric.node ?? '', /^node-[12]$/);

    // Traffic for a few seconds; the queries are asked at a moment inside it (irate looks at the last
    // two scrapes before that moment, both inside the traffic).
    const services = JSON.parse((await ok(['get', 'services', '-n', 'shop', '-o', 'json'])).stdout) as {
      items: Array<{ name: string; vips: string[] }>;
    };
    const vip = (s: string) => services.items.find((x) => x.name === s)!.vips[0]!;
    const catalogV1 = (await lab.status())!.pods.find((p) => p.name === 'catalog-v1')!.address;
    const r = await lab.exec(
      'client',
      [
        process.execPath,
        '--input-type=module',
        '-e',
        TRAFFIC,
        `http://${vip('frontend')}`,
        `http://${vip('catalog')}`,
        `http://${catalogV1}:8080`,
        '6000',
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const traffic = JSON.parse(r.stdout) as {
      started: number;
      ended: number;
      seen: Record<string, Record<string, number>>;
    };
    const statuses = Object.values(traffic.seen).flatMap((s) => Object.keys(s));
    assert.ok(statuses.includes('503') && statuses.includes('200'), JSON.stringify(traffic.seen));
    assert.deepEqual(
      traffic.seen[`http://${vip('catalog')}/fail`]
        ? Object.keys(traffic.seen[`http://${vip('catalog')}/fail`]!)
        : [],
      ['503'],
    );
    const at = (traffic.ended - 1000) / 1000;
    // Prometheus has scraped past that moment.
    await eventually(
      async () =>
        ((await query('up{job="kubernetes-pods"}'))[0]?.value[0] ?? 0) > at + 2 ? true : undefined,
      10_000,
      'a scrape after the traffic',
    );

    const svc = (s: string) => `${s}.shop.svc.cluster.local`;
    // Istio Mesh Dashboard, "HTTP/gRPC Workloads": request rate by destination workload and service.
    const requests = await query(
      `label_join(sum by (destination_workload,destination_workload_namespace,destination_service) (rate(istio_requests_total{reporter=~"source|waypoint"}[1m])), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")`,
      at,
    );
    for (const [workload, service] of [
      ['frontend', 'frontend'],
      ['catalog-v1', 'catalog'],
      ['catalog-v2', 'catalog'],
      ['ratings', 'ratings'],
    ] as const) {
      const s = requests.find(
        (x) => x.metric.destination_workload === workload && x.metric.destination_service === svc(service),
      );
      assert.ok(
        s && Number(s.value[1]) > 0,
        `a request rate to ${workload} (${svc(service)}): ${JSON.stringify(requests)}`,
      );
      assert.equal(s.metric.destination_workload_var, `${workload}.shop`);
    }
    // The aborted requests never reached a workload: Istio labels them with the service only.
    assert.ok(
      requests.some(
        (x) => x.metric.destination_service === svc('catalog') && x.metric.destination_workload === 'unknown',
      ),
      `the 503s counted against catalog's service: ${JSON.stringify(requests)}`,
    );

    // Istio Mesh Dashboard, "Success Rate": the share of non-5xx answers, below 1 with the 503s.
    const [success] = await query(
      `sum (rate(istio_requests_total{reporter=~"source|waypoint",response_code!~"5.."}[1m])) / sum (rate(istio_requests_total{reporter=~"source|waypoint"}[1m]))`,
      at,
    );
    assert.ok(
      success && Number(success.value[1]) > 0.5 && Number(success.value[1]) < 1,
      JSON.stringify(success),
    );
    // Istio Service Dashboard, "Client Success Rate (non-5xx responses)" for catalog (reporter source or waypoint).
    const [catalogSuccess] = await query(
      `sum(irate(istio_requests_total{reporter=~"source|waypoint",destination_service="${svc('catalog')}",response_code!~"5.*"}[1m])) / (sum(irate(istio_requests_total{reporter=~"source|waypoint",destination_service="${svc('catalog')}"}[1m])) or on () vector(1))`,
      at,
    );
    assert.ok(
      catalogSuccess && Number(catalogSuccess.value[1]) > 0 && Number(catalogSuccess.value[1]) < 1,
      `catalog's success rate is below 1: ${JSON.stringify(catalogSuccess)}`,
    );
    // ...and frontend's, which nothing aborted, is 1.
    const [frontendSuccess] = await query(
      `sum(irate(istio_requests_total{reporter=~"source|waypoint",destination_service="${svc('frontend')}",response_code!~"5.*"}[1m])) / (sum(irate(istio_requests_total{reporter=~"source|waypoint",destination_service="${svc('frontend')}"}[1m])) or on () vector(1))`,
      at,
    );
    assert.equal(frontendSuccess?.value[1], '1');

    // Istio Mesh Dashboard, "HTTP/gRPC Workloads": P50, P90 and P99 from the duration histogram.
    const quantiles: Record<string, number> = {};
    for (const q of ['0.5', '0.9', '0.99']) {
      const result = await query(
        `label_join(histogram_quantile(${q}, sum by (le,destination_workload,destination_workload_namespace) (rate(istio_request_duration_milliseconds_bucket{reporter=~"source|waypoint"}[1m]))), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")`,
        at,
      );
      const s = result.find((x) => x.metric.destination_workload_var === 'catalog-v1.shop');
      const v = Number(s?.value[1]);
      assert.ok(
        Number.isFinite(v) && v >= 0,
        `P${Number(q) * 100} for catalog-v1: ${JSON.stringify(result)}`,
      );
      quantiles[q] = v;
    }
    assert.ok(
      quantiles['0.5']! <= quantiles['0.9']! && quantiles['0.9']! <= quantiles['0.99']!,
      JSON.stringify(quantiles),
    );

    // Istio Workload Dashboard, "Bytes Received from Incoming TCP Connection" (catalog-v1, reporter
    // destination), by source: the client's direct connections and the waypoint's.
    const received = await query(
      `round(sum(irate(istio_tcp_received_bytes_total{reporter=~"destination", connection_security_policy="mutual_tls", destination_workload_namespace=~"shop", destination_workload=~"catalog-v1", source_workload=~".*", source_workload_namespace=~".*"}[1m])) by (source_workload, source_workload_namespace), 0.001)`,
      at,
    );
    const fromClient = received.find((s) => s.metric.source_workload === 'client');
    assert.ok(
      fromClient && Number(fromClient.value[1]) > 0,
      `bytes from client to catalog-v1: ${JSON.stringify(received)}`,
    );
    assert.equal(fromClient.metric.source_workload_namespace, 'shop');
    // Istio Mesh Dashboard, "TCP Workloads": bytes sent and received by destination (reporter source or waypoint).
    for (const metric of ['istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total']) {
      const result = await query(
        `label_join(sum by (destination_workload,destination_workload_namespace,destination_service) (rate(${metric}{reporter=~"source|waypoint"}[1m])), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")`,
        at,
      );
      const s = result.find((x) => x.metric.destination_workload_var === 'catalog-v1.shop');
      assert.ok(s && Number(s.value[1]) > 0, `${metric} toward catalog-v1: ${JSON.stringify(result)}`);
    }

    // A second replica: the control plane rewrites the target file, Prometheus (not restarted) scrapes it.
    const pid = prometheus.pid;
    await ok(['waypoint', 'apply', '-n', 'shop', '--replicas', '2', '--wait']);
    const replicas = await eventually(
      async () => {
        const pods = await waypointPods();
        return pods.length === 2 ? pods : undefined;
      },
      30_000,
      'two waypoint pods',
    );
    await eventually(
      async () => {
        const up = await upTargets();
        return replicas.every((p) => up.includes(`kubernetes-pods/${p}`)) ? true : undefined;
      },
      30_000,
      `both replicas up in Prometheus (its log: ${promLog})`,
    );
    assert.equal(prometheus.pid, pid);
    assert.equal(prometheus.exitCode, null, 'the same Prometheus process found the new replica');

    // `ambit down --keep-data` takes back what `up` gave Prometheus: the token file, and the token
    // itself from the kept store (the listener went with the control plane).
    await stopPrometheus();
    await ok(['down', '--keep-data']);
    await assert.rejects(stat(tokenFile), { code: 'ENOENT' });
    const store = await EmbeddedStore.open(join(home, 'control', 'store'));
    const kept = readInternal<Array<{ name: string }>>(store, 'admin-tokens') ?? [];
    await store.close();
    assert.deepEqual(
      kept.filter((r) => r.name === 'ambit-prometheus'),
      [],
      'no token for Prometheus left in the kept store',
    );
  });
});
