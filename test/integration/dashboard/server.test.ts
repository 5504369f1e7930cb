// The dashboard's server against a real control plane and a real Prometheus (Debian's), which scrapes
// Istio-named metrics that the proxies' own telemetry classes export on loopback: the graph, a detail
// page and the mesh's health come from real PromQL answers. Then each source fails in turn: the answers
// keep coming, promptly, marked stale, saying which source is down. No lab, no root.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { AdminClient } from '../../../src/cli/client.ts';
import { describeLines } from '../../../src/cli/mesh.ts';
import { DashboardData } from '../../../src/dashboard/data.ts';
import type { Graph, MeshHealth, ServiceDetail } from '../../../src/dashboard/model.ts';
import { PrometheusApi } from '../../../src/dashboard/prometheus-api.ts';
import { dashboardServer } from '../../../src/dashboard/server.ts';
import { Sources } from '../../../src/dashboard/sources.ts';
import { logger } from '../../../src/log/index.ts';
import { RequestMetrics, TcpMetrics } from '../../../src/telemetry/index.ts';
import { ambit, startControl } from '../../helpers/control.ts';
import { freePort } from '../../helpers/ports.ts';

const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;

const MESH = `
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Service
metadata: { name: catalog, namespace: shop }
spec:
  selector: { app: catalog }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: frontend, namespace: shop, labels: { app: frontend } }
spec: { address: 198.18.1.3, serviceAccount: frontend }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: catalog-v1, namespace: shop, labels: { app: catalog, version: v1 } }
spec: { address: 198.18.1.4, serviceAccount: catalog }
`;

/** Istio's metrics as a waypoint and a ztunnel export them, from the real telemetry classes. */
async function exporter(): Promise<{ server: Server; port: number; tick: () => void }> {
  const registry = new Registry();
  const requests = new RequestMetrics(registry);
  const tcp = new TcpMetrics(registry);
  const base = {
    source_workload: 'frontend',
    source_workload_namespace: 'shop',
    destination_workload: 'catalog-v1',
    destination_workload_namespace: 'shop',
    destination_service_name: 'catalog',
    destination_service_namespace: 'shop',
    connection_security_policy: 'mutual_tls',
  };
  const tick = () => {
    for (let i = 0; i < 9; i++)
      requests.record(
        { ...base, reporter: 'waypoint', request_protocol: 'http', response_code: '200' },
        { durationMs: 3, requestBytes: 0, responseBytes: 100 },
      );
    requests.record(
      { ...base, reporter: 'waypoint', request_protocol: 'http', response_code: '503' },
      { durationMs: 40, requestBytes: 0, responseBytes: 0 },
    );
    // Plaintext refused under STRICT, as the server side's ztunnel reports it (it knows no service).
    tcp.open({
      reporter: 'destination',
      source_workload: 'legacy',
      source_workload_namespace: 'legacy',
      destination_workload: 'catalog-v1',
      destination_workload_namespace: 'shop',
      connection_security_policy: 'unknown',
      response_flags: 'DENY',
    });
  };
  const server = createServer(async (_req, res) => {
    res.setHeader('content-type', registry.contentType);
    res.end(await registry.metrics());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, tick };
}

async function startPrometheus(dir: string, target: number, port: number): Promise<ChildProcess> {
  const config = join(dir, 'prometheus.yml');
  // The waypoint's target labels, as the kubernetes-pods job gives them.
  await writeFile(
    config,
    `global: { scrape_interval: 1s }
scrape_configs:
  - job_name: kubernetes-pods
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:${target}']
        labels: { namespace: shop, gateway_networking_k8s_io_gateway_name: waypoint }
`,
  );
  return spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=error',
    ],
    { stdio: 'ignore' },
  );
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

describe('the dashboard server against a real control plane and Prometheus', {
  skip:
    !hasPrometheus &&
    "NO PROMETHEUS: install Debian's prometheus (scripts/install-system-packages.sh; CI does)",
}, () => {
  test('graph, detail and health from real answers; a source down leaves answers stale, never hung', async (t) => {
    const control = await startControl(t);
    const applied = await ambit(['apply', '--server', control.server, '-f', '-'], {}, MESH);
    assert.equal(applied.code, 0, applied.stderr);
    const metrics = await exporter();
    t.after(() => metrics.server.close());
    const dir = await mkdtemp(join(tmpdir(), 'ambit-dash-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const promPort = await freePort();
    const prometheus = await startPrometheus(dir, metrics.port, promPort);
    t.after(() => stop(prometheus));
    const api = new PrometheusApi({ url: `http://127.0.0.1:${promPort}`, timeoutMs: 2000 });
    const admin = new AdminClient(control.server, undefined, { timeoutMs: 2000 });
    const data = new DashboardData({
      admin,
      prometheus: api,
      sources: new Sources(api.url),
      describe: (kind, namespace, name) => describeLines(admin, kind, name, namespace),
    });
    const server = dashboardServer({ data, assets: join(dir, 'no-page'), log: logger('test') });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const get = async <T>(path: string): Promise<{ status: number; body: T; ms: number }> => {
      const started = Date.now();
      const res = await fetch(base + path);
      return { status: res.status, body: (await res.json()) as T, ms: Date.now() - started };
    };

    // Before any traffic: an empty but complete graph of what the registry has, saying why it is empty.
    for (let i = 0; i < 100 && !(await api.ready()); i++) await new Promise((r) => setTimeout(r, 100));
    const empty = await get<Graph>('/api/graph?window=1m');
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.edges, []);
    assert.ok(empty.body.nodes.some((n) => n.id === 'wl:shop/frontend' && !n.traffic));
    assert.ok(empty.body.nodes.some((n) => n.id === 'svc:shop/catalog'));
    assert.ok(
      empty.body.warnings.some((w) => /has no mesh traffic in the last 1m/.test(w)),
      empty.body.warnings.join('; '),
    );

    // Traffic, scraped every second: rates need two scrapes.
    const ticker = setInterval(metrics.tick, 200);
    t.after(() => clearInterval(ticker));
    let graph: Graph | undefined;
    for (let i = 0; i < 60 && !graph?.edges.some((e) => e.protocol === 'http'); i++) {
      await new Promise((r) => setTimeout(r, 500));
      graph = (await get<Graph>('/api/graph?window=1m')).body;
    }
    assert.ok(graph, 'a graph came back');
    const ids = graph.edges.map((e) => e.id).sort();
    assert.deepEqual(ids, [
      'svc:shop/catalog->wl:shop/catalog-v1:http',
      'wl:legacy/legacy->wl:shop/catalog-v1:tcp',
      'wl:shop/frontend->wp:shop/waypoint:http',
      'wp:shop/waypoint->svc:shop/catalog:http',
    ]);
    const hop = graph.edges.find((e) => e.id === 'svc:shop/catalog->wl:shop/catalog-v1:http')!;
    assert.ok(hop.requestsPerSecond! > 0);
    assert.ok(Math.abs(hop.errorRate! - 0.1) < 0.02, `1 in 10 answered 503: ${hop.errorRate}`);
    assert.ok(hop.p99Ms! > 5 && hop.p99Ms! <= 50, `p99 within the 503s' bucket: ${hop.p99Ms}`);
    assert.equal(hop.security, 'mtls');
    const denied = graph.edges.find((e) => e.protocol === 'tcp')!;
    assert.equal(denied.security, 'plaintext');
    assert.ok(denied.deniedPerSecond > 0);
    assert.equal(graph.stale, false);
    assert.equal(graph.sources.prometheus.ok, true);

    const svc = await get<ServiceDetail>('/api/service?namespace=shop&name=catalog&window=1m');
    assert.equal(svc.status, 200);
    assert.deepEqual(
      svc.body.inbound.map((n) => n.id),
      ['wp:shop/waypoint'],
    );
    assert.ok(
      svc.body.explanation.some((l) => l.startsWith('Service:    shop/catalog')),
      'ambit describe lines',
    );
    assert.equal((await get('/api/service?namespace=shop&name=nope&window=1m')).status, 404);

    const health = await get<MeshHealth>('/api/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.replicas.length, 1);
    assert.equal(health.body.replicas[0]!.writable, true);

    // Prometheus goes: the last good graph, marked stale, promptly.
    await stop(prometheus);
    const stale = await get<Graph>('/api/graph?window=1m');
    assert.equal(stale.status, 200);
    assert.equal(stale.body.stale, true);
    assert.equal(stale.body.sources.prometheus.ok, false);
    assert.match(stale.body.sources.prometheus.error ?? '', /cannot read|ECONNREFUSED/);
    assert.deepEqual(stale.body.edges.map((e) => e.id).sort(), ids, 'the last good edges');
    assert.ok(stale.ms < 3000, `answered in ${stale.ms} ms`);
    // A question never answered before has nothing to fall back to: empty, and it says so.
    const never = await get<Graph>('/api/graph?window=15m');
    assert.equal(never.body.edges.length, 0);
    assert.ok(never.body.warnings.some((w) => /this part is empty/.test(w)));

    // The control plane goes too: the page it cannot do without is a 503 unless it was read before.
    await control.stop();
    const seen = await get<ServiceDetail>('/api/service?namespace=shop&name=catalog&window=1m');
    assert.equal(seen.status, 200);
    assert.equal(seen.body.stale, true, 'the last answer, marked stale');
    assert.equal(seen.body.sources.control.ok, false);
    assert.ok(seen.body.explanation.length > 0);
    const unseen = await get<{ error: string }>('/api/workload?namespace=shop&name=frontend&window=1m');
    assert.equal(unseen.status, 503);
    assert.match(unseen.body.error, /cannot describe workload shop\/frontend/);

    // The server's own refusals and its page, end to end (the page is not built into this test's dir).
    assert.equal((await fetch(`${base}/api/nope`)).status, 404);
    assert.equal((await fetch(`${base}/api/graph`, { method: 'POST' })).status, 405);
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 500);
    assert.match(((await page.json()) as { error: string }).error, /not built .* run `npm run build`/);
  });

  test('a Prometheus that accepts and never answers holds no page past the read deadline', async (t) => {
    const control = await startControl(t);
    const silent = createNetServer(() => {}); // accepts, reads nothing, says nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    t.after(() => {
      silent.close();
    });
    const sockets: Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    const api = new PrometheusApi({
      url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      timeoutMs: 60_000,
    });
    const admin = new AdminClient(control.server, undefined, { timeoutMs: 2000 });
    const data = new DashboardData({
      admin,
      prometheus: api,
      sources: new Sources(api.url, { deadlineMs: 1000 }),
      describe: (kind, namespace, name) => describeLines(admin, kind, name, namespace),
    });
    const started = Date.now();
    const graph = await data.graph('5m');
    assert.ok(Date.now() - started < 3000, `answered in ${Date.now() - started} ms`);
    assert.equal(graph.sources.prometheus.ok, false);
    assert.match(graph.sources.prometheus.error ?? '', /no answer within 1000 ms/);
    assert.equal(graph.sources.control.ok, true);
  });

  test('a namespace with hundreds of workloads: all drawn, or past the limit the idle ones left out, said', async (t) => {
    const control = await startControl(t);
    const count = 300;
    const entries = Array.from(
      { length: count },
      (_, i) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: w-${i}, namespace: big, labels: { app: w-${i} } }
spec: { address: 198.18.${10 + Math.floor(i / 200)}.${(i % 200) + 2}, serviceAccount: w }
`,
    ).join('');
    const applied = await ambit(
      ['apply', '--server', control.server, '-f', '-'],
      {},
      `apiVersion: v1
kind: Namespace
metadata: { name: big }
${entries}`,
    );
    assert.equal(applied.code, 0, applied.stderr);
    const admin = new AdminClient(control.server, undefined, { timeoutMs: 5000 });
    // No Prometheus at all: the registry alone still draws the namespace.
    const api = new PrometheusApi({ url: 'http://127.0.0.1:1', timeoutMs: 1000 });
    const data = (maxGraphNodes?: number) =>
      new DashboardData({
        admin,
        prometheus: api,
        sources: new Sources(api.url),
        describe: (kind, namespace, name) => describeLines(admin, kind, name, namespace),
        ...(maxGraphNodes ? { maxGraphNodes } : {}),
      });
    const all = await data().graph('5m', 'big');
    assert.equal(all.nodes.filter((n) => n.kind === 'workload').length, count);
    assert.equal(all.sources.prometheus.ok, false);
    const capped = await data(100).graph('5m', 'big');
    assert.equal(capped.nodes.filter((n) => n.kind === 'workload').length, 0);
    assert.ok(
      capped.warnings.some(
        (w) => w === `The graph has ${count} nodes; the ${count} without traffic in the window are left out.`,
      ),
      capped.warnings.join('; '),
    );
  });
});
