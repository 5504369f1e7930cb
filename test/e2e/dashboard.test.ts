// The dashboard and `ambit stat` as a user meets them (root): `ambit demo`, a waypoint for the shop, the
// catalog split 90/10 and traffic from the client pod (and plaintext from the legacy pod, refused under
// STRICT), then `ambit stat`, and `ambit dashboard` (which starts the lab's own Prometheus) read by the
// Debian chromium through playwright-core: the storefront's graph with mTLS marks, a DENY policy showing
// as denied, a service page with charts, the mesh's health. Screenshots go to test-output/dashboard/ for
// a person to look at. Its own AMBIT_HOME and lab name; everything is torn down even on failure.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { type BrowserContext, chromium, type Locator } from 'playwright-core';
import { AMBIT } from '../helpers/control.ts';
import { cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

const CHROMIUM = '/usr/bin/chromium';
const SPLIT = resolve(import.meta.dirname, '../../examples/storefront/catalog-split.yaml');
const SHOTS = resolve(import.meta.dirname, '../../test-output/dashboard');

/** L7, at the waypoint: the client's requests to the frontend are refused (403, RBAC). */
const DENY_CLIENT = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-client, namespace: shop }
spec:
  targetRefs: [{ group: "", kind: Service, name: frontend }]
  action: DENY
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/shop/sa/client"] } }]
`;

interface StatRow {
  namespace?: string;
  name: string;
  meshed: string;
  successRate?: number;
  requestsPerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
}

describe('the dashboard and ambit stat on the demo', {
  skip:
    (!isRoot && 'NOT ROOT: the dashboard end-to-end test needs root (CI runs it as root)') ||
    (!existsSync(CHROMIUM) &&
      `NO CHROMIUM: ${CHROMIUM} is missing; scripts/install-system-packages.sh installs it (CI does)`),
}, () => {
  test('the storefront graph with mTLS marks, a denied call, charts and health; stat tables', async (t) => {
    if (skipUnlessRoot(t)) return;
    const cli = await cliLab('g');
    const { lab, ok, env } = cli;
    let dashboard: ChildProcess | undefined;
    t.after(async () => {
      if (dashboard && dashboard.exitCode === null) {
        const gone = new Promise((r) => dashboard!.once('exit', r));
        dashboard.kill('SIGTERM');
        await gone;
      }
      await cli.down();
    });

    await ok(['demo']);
    await ok(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace', '--wait']);
    await ok(['apply', '-f', SPLIT]);
    // Traffic for as long as the test runs (lab processes: `ambit down` stops them).
    await lab.run('client', [
      'sh',
      '-c',
      'while true; do curl -s -o /dev/null --max-time 2 http://frontend.shop/api/products; sleep 0.1; done',
    ]);
    await lab.run('legacy', [
      'sh',
      '-c',
      'while true; do curl -s -o /dev/null --max-time 2 http://catalog.shop/products; sleep 0.5; done',
    ]);

    // `ambit stat` starts the lab's Prometheus on first use; rates come once it has scraped twice.
    const stat = async (args: string[]) => (await ok(['stat', ...args])).stdout;
    const rows = await eventually(
      async () => {
        const { items } = JSON.parse(await stat(['ns/shop', '-o', 'json'])) as { items: StatRow[] };
        const frontend = items.find((r) => r.name === 'frontend');
        return frontend?.requestsPerSecond && items.find((r) => r.name === 'catalog-v2')?.requestsPerSecond
          ? items
          : undefined;
      },
      90_000,
      'ambit stat ns/shop to show the storefront’s requests',
    );
    const frontend = rows.find((r) => r.name === 'frontend')!;
    assert.equal(frontend.meshed, '1/1');
    assert.equal(frontend.successRate, 1, 'nothing failed yet');
    assert.ok(frontend.p50Ms! > 0 && frontend.p50Ms! <= frontend.p99Ms!, JSON.stringify(frontend));
    assert.deepEqual(
      rows.map((r) => r.name),
      ['catalog-v1', 'catalog-v2', 'client', 'frontend', 'ratings'],
      'every workload of shop, idle ones too (the client only sends)',
    );
    const table = await stat(['ns/shop']);
    assert.match(
      table,
      /^NAMESPACE\s+NAME\s+MESHED\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99\s+TCP_CONN$/m,
    );
    assert.match(table, /^shop\s+frontend\s+1\/1\s+100\.00%\s+[\d.]+rps\s+[\d.]+ms/m);
    const to = await stat(['workload/frontend', '-n', 'shop', '--to', 'svc/catalog-v1']);
    assert.match(to, /^shop\s+frontend\s+1\/1\s+100\.00%\s+[\d.]+rps/m, 'what frontend sent to catalog-v1');
    const services = await stat(['svc', '-n', 'shop']);
    assert.match(services, /^shop\s+catalog-v1\s+1\/1\s+100\.00%/m);

    // The dashboard, on a free loopback port, reusing the Prometheus `ambit stat` started.
    dashboard = spawn(process.execPath, [AMBIT, 'dashboard', '--listen', '127.0.0.1:0'], {
      env: { ...process.env, ...env, AMBIT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let dashboardErr = '';
    dashboard.stderr?.on('data', (d: Buffer) => {
      dashboardErr += d.toString();
    });
    const url = await new Promise<string>((found, fail) => {
      let out = '';
      dashboard!.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /Ambit dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) found(m[1]!);
      });
      dashboard!.once('exit', (code) =>
        fail(new Error(`ambit dashboard exited ${code}: ${out} ${dashboardErr}`)),
      );
    });

    await mkdir(SHOTS, { recursive: true });
    const profile = await mkdtemp(join(tmpdir(), 'ambit-chromium-'));
    let browser: BrowserContext | undefined;
    // The browser closes (and stops writing its profile) before the profile goes, even if it never started.
    t.after(async () => {
      await browser?.close();
      await rm(profile, { recursive: true, force: true });
    });
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
    const shot = async (name: string) => {
      const path = join(SHOTS, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      t.diagnostic(`screenshot: ${path}`);
    };
    // The text as rendered (cells apart), of every element the locator matches.
    const text = async (l: Locator) => (await l.allInnerTexts()).join('\n');
    const edgeRow = (id: string) => page.locator(`[data-testid=edge-table] tr[data-edge-id="${id}"]`);

    // The graph: the storefront's services and the edges between them, with mTLS marks, drawn.
    await page.goto(`${url}#/graph?window=1m&namespace=shop`);
    const paths = [
      'wl:shop/client->wp:shop/waypoint:http',
      'wp:shop/waypoint->svc:shop/frontend:http',
      'svc:shop/frontend->wl:shop/frontend:http',
      'wl:shop/frontend->wp:shop/waypoint:http',
      'wp:shop/waypoint->svc:shop/catalog-v1:http',
      'wp:shop/waypoint->svc:shop/catalog-v2:http',
      'svc:shop/catalog-v1->wl:shop/catalog-v1:http',
      // Only catalog v2 shows ratings. Both versions run as one service account: the waypoint tells them
      // apart by the address each tunnel proves.
      'wl:shop/catalog-v2->wp:shop/waypoint:http',
      'wp:shop/waypoint->svc:shop/ratings:http',
    ];
    for (const id of paths) {
      await edgeRow(id).waitFor({ timeout: 60_000 });
      const row = await text(edgeRow(id));
      assert.match(row, /mTLS/, `${id} is marked mTLS: ${row}`);
      assert.doesNotMatch(row, /plaintext|denied/, `${id}: ${row}`);
    }
    // The legacy pod's plaintext, refused under STRICT: marked plaintext and denied.
    const legacy = page.locator('[data-testid=edge-table] tr[data-edge-id^="wl:legacy/legacy->"]').first();
    await legacy.waitFor({ timeout: 30_000 });
    assert.match(await text(legacy), /plaintext/);
    assert.match(await text(legacy), /denied/);
    for (const id of ['svc:shop/frontend', 'svc:shop/catalog', 'wl:shop/catalog-v2', 'wp:shop/waypoint'])
      await page.locator(`[data-testid=node-table] tr[data-node-id="${id}"]`).waitFor({ timeout: 10_000 });
    const drawn = await page.waitForFunction(
      () => {
        const g = (globalThis as { __ambitGraph?: { ready: boolean; nodes: number; edges: number } })
          .__ambitGraph;
        return g?.ready && g.edges >= 9 ? g : undefined;
      },
      undefined,
      { timeout: 30_000 },
    );
    const graph = (await drawn.jsonValue()) as { nodes: number; edges: number };
    assert.ok(graph.nodes >= 10, `drawn on the canvas: ${JSON.stringify(graph)}`);
    await shot('graph');

    // A DENY policy at the waypoint: the client's calls to the frontend show as denied.
    await ok(['apply', '-f', '-'], DENY_CLIENT);
    await eventually(
      async () => {
        await page.click('#refresh-now');
        await page.waitForTimeout(1000);
        const row = edgeRow('wl:shop/client->wp:shop/waypoint:http');
        return (await row.count()) > 0 && /denied/.test(await text(row)) ? true : undefined;
      },
      60_000,
      "the client's edge to be marked denied",
    );
    await shot('graph-denied');

    // A service page: its charts are drawn from data, its route's weights beside the observed split.
    await page.goto(`${url}#/service/shop/catalog-v1?window=5m`);
    const rps = page.locator('[data-testid=chart-rps]');
    await rps.waitFor({ timeout: 30_000 });
    await eventually(
      async () =>
        (await rps.locator('canvas').count()) > 0 && /latest:/.test(await text(rps)) ? true : undefined,
      30_000,
      'the requests chart to be drawn',
    );
    assert.doesNotMatch(await text(rps), /no data in this window/);
    assert.match(await text(page.locator('[data-testid=chart-latency]')), /latest: p50/);
    assert.match(await text(page.locator('main')), /Service:\s+shop\/catalog-v1/, 'ambit describe lines');
    await shot('service-catalog-v1');
    await page.goto(`${url}#/service/shop/catalog?window=5m`);
    await page
      .getByText('HTTPRoute shop/catalog-split', { exact: false })
      .first()
      .waitFor({ timeout: 20_000 });
    assert.match(await text(page.locator('main')), /90% \(weight 90\)/);
    await shot('service-catalog');
    await page.goto(`${url}#/workload/shop/frontend?window=5m`);
    await page.getByText('expires in', { exact: false }).first().waitFor({ timeout: 20_000 });
    await shot('workload-frontend');

    // Mesh health: the replica, every proxy SYNCED.
    await page.goto(`${url}#/health`);
    await page.getByText('SYNCED').first().waitFor({ timeout: 20_000 });
    const health = await text(page.locator('main'));
    assert.match(health, /node-1\s+ztunnel\s+SYNCED/);
    assert.match(health, /waypoint-[0-9a-f]+-0\s+waypoint\s+SYNCED/);
    await shot('health');

    // Read-only: the page only ever asked for GETs, of its own origin.
    const origin = new URL(url).origin;
    assert.ok(requests.length > 0);
    for (const r of requests) assert.ok(r.startsWith(`GET ${origin}/`), `only GETs of its own origin: ${r}`);
    // A cross-site write is refused.
    const post = await fetch(`${url}api/graph`, { method: 'POST' });
    assert.equal(post.status, 405);
  });
});
