// The waypoint end-to-end in the lab (root): a namespace enrolled with `istio.io/use-waypoint`, a
// waypoint Gateway applied through the admin API and programmed, then HTTPRoutes and a GRPCRoute on
// Services (GAMMA) seen by real clients in a pod: weighted split and a live shift under h2load, matches,
// redirect and rewrite, mirror, timeout, retry, gRPC unary and streaming, WebSocket, and the
// waypoint's own `istio_requests_total`.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, type TestContext, test } from 'node:test';
import type { Mesh } from '../../src/cli/up.ts';
import type { Lab, LabStatus } from '../../src/lab/index.ts';
import type { MemoryReport } from '../../src/proxy/index.ts';
import { ambit } from '../helpers/control.ts';
import { eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { enrolled, labMesh } from '../helpers/mesh-lab.ts';

const NS = 'shop';
const WAYPOINT = 'waypoint';
const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const GATEWAY_API = 'gateway.networking.k8s.io/v1';
const CLIENT_PRINCIPAL = `spiffe://cluster.local/ns/${NS}/sa/client`;

/**
 * Makes N requests to URL, CONCURRENCY at a time, with extra HEADERS (JSON), and prints what came back
 * as counts: statuses, the serving version, the route marker header, the peer the echo saw, errors.
 */
const HIT = `
const [url, n, concurrency, headersJson] = process.argv.slice(1);
const headers = JSON.parse(headersJson || '{}');
const out = { status: {}, version: {}, marker: {}, peer: {}, forwardedProto: {}, errors: [] };
const bump = (o, k) => { o[k] = (o[k] ?? 0) + 1; };
let left = Number(n);
const worker = async () => {
  while (left > 0) {
    left--;
    try {
      const r = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(10000) });
      const text = await r.text();
      bump(out.status, r.status);
      bump(out.marker, r.headers.get('x-ambit-route') ?? '-');
      if (r.status === 200) {
        const body = JSON.parse(text);
        bump(out.version, body.version ?? '-');
        bump(out.peer, body.request.peer.address ?? '-');
        bump(out.forwardedProto, body.request.headers['x-forwarded-proto'] ?? '-');
      }
    } catch (err) {
      out.errors.push(String(err.cause?.code ?? err.name ?? err.message));
    }
  }
};
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
console.log(JSON.stringify(out));
`;

interface Hits {
  status: Record<string, number>;
  version: Record<string, number>;
  marker: Record<string, number>;
  peer: Record<string, number>;
  forwardedProto: Record<string, number>;
  errors: string[];
}

/** Opens URL as a WebSocket, sends a text and a binary message, prints their echoes and the close. */
const WEBSOCKET = `
const [url] = process.argv.slice(1);
const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
const got = [];
const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true, got })); process.exit(1); }, 10000);
ws.onopen = () => { ws.send('hello through the waypoint'); ws.send(new Uint8Array([0, 1, 2, 253, 254, 255])); };
ws.onmessage = (e) => {
  got.push(typeof e.data === 'string' ? { text: e.data } : { binary: Array.from(new Uint8Array(e.data)) });
  if (got.length === 2) ws.close(1000, 'done');
};
ws.onerror = (e) => { console.log(JSON.stringify({ error: String(e.message ?? e.type), got })); };
ws.onclose = (e) => { clearTimeout(timer); console.log(JSON.stringify({ got, code: e.code, clean: e.wasClean })); };
`;

/** Prints, in hex, the first bytes of the raw answer to GET PATH (what curl refuses to read). */
const RAW = `
import net from 'node:net';
const [host, path] = process.argv.slice(1);
const s = net.connect(80, host, () => s.write('GET ' + path + ' HTTP/1.1\\r\\nhost: ' + host + '\\r\\n\\r\\n'));
let got = Buffer.alloc(0);
s.on('data', (d) => { got = Buffer.concat([got, d]); });
setTimeout(() => { console.log(got.subarray(0, 32).toString('hex'), JSON.stringify(got.subarray(16, 64).toString('latin1'))); process.exit(0); }, 3000);
`;

async function rawReply(env: Env, path: string): Promise<string> {
  const r = await env.lab.exec('client', [
    process.execPath,
    '--input-type=module',
    '-e',
    RAW,
    env.vips.web ?? '',
    path,
  ]);
  return `raw answer to GET ${path}: ${r.stdout.trim()}`;
}

const http = (name: string) => ({ name, port: 80, targetPort: 8080, appProtocol: 'http' });
const grpcPort = { name: 'grpc', port: 9090, targetPort: 9090, appProtocol: 'grpc' };

const service = (name: string, selector: Record<string, string>, port: object) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: NS },
  spec: { selector, ports: [port] },
});

type Rule = Record<string, unknown>;

const pathPrefix = (value: string) => ({ path: { type: 'PathPrefix', value } });
const backend = (name: string, weight?: number, port = 80) =>
  weight === undefined ? { name, port } : { name, port, weight };

/**
 * An HTTPRoute on Service `web` port 80. Each carries a probe rule (`/probe/NAME` sets request header
 * x-probe: REV), so a test can wait until the waypoint serves this revision of the route.
 */
function httpRoute(name: string, rev: string, rules: Rule[]) {
  const probe: Rule = {
    matches: [{ path: { type: 'Exact', value: `/probe/${name}` } }],
    filters: [
      { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-probe', value: rev }] } },
    ],
    backendRefs: [backend('web-v1')],
  };
  return {
    apiVersion: GATEWAY_API,
    kind: 'HTTPRoute',
    metadata: { name, namespace: NS },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }], rules: [...rules, probe] },
  };
}

/** A response header naming the rule that answered, so counts show which route revision served. */
const marker = (value: string) => ({
  type: 'ResponseHeaderModifier',
  responseHeaderModifier: { set: [{ name: 'x-ambit-route', value }] },
});

interface Env {
  mesh: Mesh;
  lab: Lab;
  vips: Record<string, string>;
  waypoint: LabStatus['pods'][number];
  pods: Record<string, string>;
}

/** The waypoint pod's log, last lines, for a message that says why the waypoint misbehaved. */
async function waypointLog(env: Env, lines = 30): Promise<string> {
  const status = await env.lab.status();
  const pod = status?.pods.find((p) => p.name === env.waypoint.name);
  const logs = await Promise.all((pod?.processes ?? []).map((p) => readFile(p.log, 'utf8').catch(() => '')));
  return logs.join('\n').split('\n').slice(-lines).join('\n');
}

/**
 * The waypoint's access-log lines for `path` once there are `count` of them (they are flushed within a
 * second), or what there is after 5 s: the evidence when the waypoint misbehaves.
 */
async function accessLine(env: Env, path: string, count: number): Promise<string> {
  const lines = async () =>
    (await waypointLog(env, 10_000))
      .split('\n')
      .filter((l) => l.includes('"msg":"access"') && l.includes(`"path":"${path}"`));
  try {
    return (
      await eventually(async () => ((await lines()).length >= count ? lines() : undefined), 5_000)
    ).join('\n');
  } catch {
    return (await lines()).join('\n');
  }
}

async function apply(env: Env, objects: unknown[]): Promise<void> {
  await env.mesh.admin.call('POST', '/ambit/v1/apply', { objects });
}

async function hit(env: Env, url: string, n: number, concurrency = 10, headers = {}): Promise<Hits> {
  const r = await env.lab.exec(
    'client',
    [
      process.execPath,
      '--input-type=module',
      '-e',
      HIT,
      url,
      String(n),
      String(concurrency),
      JSON.stringify(headers),
    ],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.code, 0, `requests to ${url} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Hits;
}

async function curl(env: Env, args: string[]) {
  return env.lab.exec('client', ['curl', '-sS', '--max-time', '10', ...args], { timeoutMs: 20_000 });
}

/** Waits until the waypoint serves revision `rev` of route `name` (its probe rule answers with it). */
async function routed(env: Env, name: string, rev: string): Promise<void> {
  await eventually(
    async () => {
      const r = await curl(env, [`http://${env.vips.web}/probe/${name}`]);
      if (r.code !== 0) return undefined;
      try {
        return JSON.parse(r.stdout).request?.headers?.['x-probe'] === rev ? true : undefined;
      } catch {
        return undefined;
      }
    },
    30_000,
    `the waypoint to serve HTTPRoute ${name} revision ${rev}`,
  );
}

/** How many requests the waypoint counted so far for backend Service `name`. */
function requestsTo(metrics: string, name: string): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith('istio_requests_total{') && l.includes(`destination_service_name="${name}"`))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

async function waypointMetrics(env: Env): Promise<string> {
  const r = await env.lab.exec(env.waypoint.name, ['curl', '-sS', 'http://127.0.0.1:15020/metrics']);
  assert.equal(r.code, 0, `waypoint metrics: ${r.stderr}`);
  return r.stdout;
}

/** Lines of an echo pod's logs that say it served `path` (its access line). */
async function served(env: Env, pod: string, path: string): Promise<Array<Record<string, unknown>>> {
  const status = await env.lab.status();
  const p = status?.pods.find((x) => x.name === pod);
  const out: Array<Record<string, unknown>> = [];
  for (const proc of p?.processes ?? []) {
    const text = await readFile(proc.log, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === 'access' && entry.path === path) out.push(entry);
    }
  }
  return out;
}

/** A whole-suite labMesh: node:test gives suite hooks no `t.after`, so teardown runs in `after`. */
function suiteMesh(prefix: string): { up: () => Promise<Mesh>; down: () => Promise<void> } {
  const teardowns: Array<() => Promise<void> | void> = [];
  const t = { after: (fn: () => Promise<void> | void) => teardowns.push(fn) } as unknown as TestContext;
  return {
    up: () => labMesh(t, prefix),
    down: async () => {
      for (const fn of teardowns.reverse()) await fn();
    },
  };
}

describe('the waypoint, end-to-end', {
  skip: !isRoot && 'NOT ROOT: waypoint end-to-end tests need root (CI runs them as root)',
}, () => {
  const suite = suiteMesh('waypoint');
  let env: Env;

  before(async () => {
    const mesh = await suite.up();
    const { lab, admin } = mesh;
    const pod = (name: string, node: string, labels: Record<string, string>, serviceAccount: string) =>
      lab.addPod({ name, node, namespace: NS, serviceAccount, labels });
    const client = await pod('client', 'node-1', { app: 'client' }, 'client');
    const v1 = await pod('web-v1', 'node-1', { app: 'web', version: 'v1' }, 'web');
    const v2 = await pod('web-v2', 'node-2', { app: 'web', version: 'v2' }, 'web');
    const labels = { 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': WAYPOINT };
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels } },
        service('web', { app: 'web' }, http('http')),
        service('web-v1', { app: 'web', version: 'v1' }, http('http')),
        service('web-v2', { app: 'web', version: 'v2' }, http('http')),
        service('grpc', { app: 'web' }, grpcPort),
        service('grpc-v1', { app: 'web', version: 'v1' }, grpcPort),
        service('grpc-v2', { app: 'web', version: 'v2' }, grpcPort),
        service('web-idle', { app: 'web', version: 'v2' }, { ...http('http'), targetPort: 8081 }),
        {
          apiVersion: GATEWAY_API,
          kind: 'Gateway',
          metadata: { name: WAYPOINT, namespace: NS },
          spec: {
            gatewayClassName: 'istio-waypoint',
            listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
          },
        },
      ],
    });
    // The echo pods log one access line per request (the mirror test counts them). They keep idle
    // connections for 10 minutes: with Node's default 5 s, the waypoint's next request on a connection
    // the echo closed hangs (the idle keep-alive test below), which would break every other test.
    const logInfo = { env: { AMBIT_LOG_LEVEL: 'info' } };
    for (const name of ['web-v1', 'web-v2']) {
      await lab.run(name, ['ambit', 'sample', 'echo', '--port', '8080', '--keep-alive', '600000'], logInfo);
      await lab.run(name, ['ambit', 'sample', 'grpc-echo', '--port', '9090'], logInfo);
    }
    await lab.run('web-v2', ['ambit', 'sample', 'echo', '--port', '8081'], logInfo);
    const gateway = await eventually(
      async () => {
        const gw = await admin.call<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(
          'GET',
          `/apis/${GATEWAY_API}/namespaces/${NS}/gateways/${WAYPOINT}`,
        );
        return gw.status?.conditions?.some((c) => c.type === 'Programmed' && c.status === 'True')
          ? gw
          : undefined;
      },
      60_000,
      `Gateway ${NS}/${WAYPOINT} to be Programmed=True`,
    );
    assert.ok(gateway);
    const status = await lab.status();
    const waypoint = status?.pods.find((p) => p.labels[GATEWAY_NAME_LABEL] === WAYPOINT);
    assert.ok(waypoint, `a waypoint pod labelled ${GATEWAY_NAME_LABEL}=${WAYPOINT}`);
    const { items } = await admin.call<{ items: Array<{ name: string; vips: string[] }> }>(
      'GET',
      `/ambit/v1/services?namespace=${NS}`,
    );
    const vips: Record<string, string> = {};
    for (const s of items) if (s.vips[0]) vips[s.name] = s.vips[0];
    for (const name of ['web', 'web-v1', 'web-v2', 'grpc', 'web-idle'])
      assert.ok(vips[name], `Service ${name} has a VIP`);
    env = {
      mesh,
      lab,
      vips,
      waypoint,
      pods: { client: client.address, 'web-v1': v1.address, 'web-v2': v2.address },
    };
    await enrolled(lab, 'node-1', [client.address, v1.address], 30_000);
    await enrolled(lab, 'node-2', [v2.address], 30_000);
    // Traffic to the Service goes through the waypoint: it adds x-forwarded-proto, which curl never sends.
    await eventually(
      async () => {
        const r = await curl(env, [`http://${vips.web}/hello`]);
        if (r.code !== 0) return undefined;
        return JSON.parse(r.stdout).request?.headers?.['x-forwarded-proto'] === 'http' ? true : undefined;
      },
      30_000,
      `the client's requests to web (${vips.web}) to go through the waypoint`,
    );
  });

  after(() => suite.down());

  test('90/10 split, then a shift to 0/100 under h2load with no failed request', async (t) => {
    if (skipUnlessRoot(t)) return;
    const split = (rev: string, w1: number, w2: number) =>
      httpRoute('split', rev, [
        {
          matches: [pathPrefix('/split')],
          filters: [marker(`split-${rev}`)],
          backendRefs: [backend('web-v1', w1), backend('web-v2', w2)],
        },
      ]);
    await apply(env, [split('a', 90, 10)]);
    await routed(env, 'split', 'a');
    const url = `http://${env.vips.web}/split`;
    const before = await hit(env, url, 500);
    assert.deepEqual(before.errors, []);
    assert.deepEqual(before.status, { 200: 500 }, JSON.stringify(before));
    assert.deepEqual(before.marker, { 'split-a': 500 });
    assert.deepEqual(before.forwardedProto, { http: 500 }, 'every request went through the waypoint');
    const v1 = before.version.v1 ?? 0;
    assert.equal(v1 + (before.version.v2 ?? 0), 500);
    assert.ok(v1 >= 425 && v1 <= 475, `v1 served ${v1} of 500 (want 90 % ± 5 %): ${JSON.stringify(before)}`);

    // Shift everything to v2 while h2load runs: once it has sent some requests, apply the new weights.
    const baseline =
      requestsTo(await waypointMetrics(env), 'web-v1') + requestsTo(await waypointMetrics(env), 'web-v2');
    let loadDone = false;
    const load = env.lab
      .exec('client', ['h2load', '-n', '2000', '-c', '10', '--h1', url], { timeoutMs: 120_000 })
      .finally(() => {
        loadDone = true;
      });
    await eventually(
      async () => {
        const m = await waypointMetrics(env);
        return requestsTo(m, 'web-v1') + requestsTo(m, 'web-v2') - baseline >= 200 || loadDone
          ? true
          : undefined;
      },
      60_000,
      'h2load to be under way',
    );
    assert.equal(loadDone, false, 'the shift is applied while h2load is still running');
    await apply(env, [split('b', 0, 100)]);
    const h2 = await load;
    assert.equal(h2.code, 0, `h2load: ${h2.stderr}\n${h2.stdout}`);
    assert.match(
      h2.stdout,
      /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/,
      h2.stdout,
    );
    assert.match(h2.stdout, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/, h2.stdout);

    await routed(env, 'split', 'b');
    const afterShift = await hit(env, url, 200);
    assert.deepEqual(afterShift.status, { 200: 200 }, JSON.stringify(afterShift));
    assert.deepEqual(afterShift.version, { v2: 200 }, 'after the shift every request goes to v2');
    assert.deepEqual(afterShift.marker, { 'split-b': 200 });
  });

  test('path, header and query matches send to different backends', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('matches', 'a', [
        { matches: [pathPrefix('/match/v2')], backendRefs: [backend('web-v2')] },
        {
          matches: [{ ...pathPrefix('/match'), headers: [{ name: 'x-version', value: 'v2' }] }],
          backendRefs: [backend('web-v2')],
        },
        {
          matches: [{ ...pathPrefix('/match'), queryParams: [{ name: 'version', value: 'v2' }] }],
          backendRefs: [backend('web-v2')],
        },
        { matches: [pathPrefix('/match')], backendRefs: [backend('web-v1')] },
      ]),
    ]);
    await routed(env, 'matches', 'a');
    const base = `http://${env.vips.web}`;
    const cases: Array<[string, string, Record<string, string>, string]> = [
      ['path', `${base}/match/v2/x`, {}, 'v2'],
      ['header', `${base}/match/x`, { 'x-version': 'v2' }, 'v2'],
      ['query', `${base}/match/x?version=v2`, {}, 'v2'],
      ['header with another value', `${base}/match/x`, { 'x-version': 'v3' }, 'v1'],
      ['query with another value', `${base}/match/x?version=v1`, {}, 'v1'],
      ['no match but the prefix', `${base}/match/x`, {}, 'v1'],
    ];
    for (const [what, url, headers, want] of cases) {
      const h = await hit(env, url, 20, 5, headers);
      assert.deepEqual(h.version, { [want]: 20 }, `${what} (${url}) → ${want}: ${JSON.stringify(h)}`);
    }
  });

  test('a RequestRedirect answers 301 with its Location, as curl -si shows it', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('redirect', 'a', [
        {
          matches: [pathPrefix('/old')],
          filters: [
            {
              type: 'RequestRedirect',
              requestRedirect: {
                path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' },
                statusCode: 301,
              },
            },
          ],
        },
      ]),
    ]);
    await routed(env, 'redirect', 'a');
    const r = await curl(env, ['-si', `http://${env.vips.web}/old/page?q=1`]);
    assert.equal(r.code, 0, `${r.stderr}\n${await rawReply(env, '/old/page?q=1')}`);
    assert.match(r.stdout, /^HTTP\/1\.1 301 /, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(
        `^location: http://${(env.vips.web ?? '').replaceAll('.', '\\.')}/new/page\\?q=1\\r?$`,
        'im',
      ),
      r.stdout,
    );
  });

  test('a URLRewrite changes the path the backend sees and keeps the query', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('rewrite', 'a', [
        {
          matches: [pathPrefix('/api')],
          filters: [
            {
              type: 'URLRewrite',
              urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v1/api' } },
            },
          ],
          backendRefs: [backend('web-v1')],
        },
      ]),
    ]);
    await routed(env, 'rewrite', 'a');
    const rw = await curl(env, [`http://${env.vips.web}/api/items?x=1`]);
    assert.equal(rw.code, 0, rw.stderr);
    const seen = JSON.parse(rw.stdout);
    assert.equal(seen.request.path, '/v1/api/items', 'the backend saw the rewritten path');
    assert.deepEqual(seen.request.query, { x: '1' }, 'the query is kept');
    assert.equal(seen.version, 'v1');
  });

  test('a RequestMirror copies every request to the mirror while the client sees only the primary', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('mirror', 'a', [
        {
          matches: [pathPrefix('/mirrored')],
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'web-v2', port: 80 } } }],
          backendRefs: [backend('web-v1')],
        },
      ]),
    ]);
    await routed(env, 'mirror', 'a');
    const path = `/mirrored/${Date.now()}`;
    const h = await hit(env, `http://${env.vips.web}${path}`, 20, 1);
    assert.deepEqual(h.status, { 200: 20 }, JSON.stringify(h));
    assert.deepEqual(h.version, { v1: 20 }, 'the client sees only the primary (v1)');
    const copies = await eventually(
      async () => {
        const lines = await served(env, 'web-v2', path);
        return lines.length >= 20 ? lines : undefined;
      },
      15_000,
      `web-v2 to log the 20 mirrored requests for ${path}`,
    );
    assert.equal(copies.length, 20, 'each request was mirrored once');
    for (const c of copies)
      assert.match(String(c.authority), /-shadow(:\d+)?$/, 'mirrors carry the -shadow host');
    assert.equal((await served(env, 'web-v1', path)).length, 20, 'the primary served each request once');
  });

  test('timeouts.request 500ms against a 2 s backend answers 504 upstream request timeout', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('timeouts', 'a', [
        { matches: [pathPrefix('/slow')], timeouts: { request: '500ms' }, backendRefs: [backend('web-v1')] },
      ]),
    ]);
    await routed(env, 'timeouts', 'a');
    const r = await curl(env, ['-s', '-w', '\n%{http_code}', `http://${env.vips.web}/slow?delay=2000`]);
    assert.equal(r.code, 0, `curl ${r.code} ${r.stderr}\n${await rawReply(env, '/slow?delay=2000')}`);
    const at = r.stdout.lastIndexOf('\n');
    assert.equal(r.stdout.slice(at + 1), '504', r.stdout);
    assert.equal(r.stdout.slice(0, at), 'upstream request timeout');
    const quick = await curl(env, [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://${env.vips.web}/slow?delay=10`,
    ]);
    assert.equal(quick.stdout, '200', 'a fast answer on the same rule passes');
  });

  test('retry on 503 (9 retries) turns a 50 % failing backend into ≥ 99 % success', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('retries', 'a', [
        {
          matches: [pathPrefix('/flaky')],
          retry: { attempts: 9, codes: [503] },
          backendRefs: [backend('web-v1')],
        },
        { matches: [pathPrefix('/unretried')], backendRefs: [backend('web-v1')] },
      ]),
    ]);
    await routed(env, 'retries', 'a');
    // Without retries half fail, so the backend does fail; with 9 retries (10 attempts) a request fails only
    // when all ten do: 1/1024, so 3 or more failures in 200 happen about once in a thousand runs. One request
    // at a time: the retry budget (Envoy's: at most 3 retries in flight, or 20 % of requests) is not the
    // subject here, and with several requests in flight it refuses retries by design.
    const raw = await hit(env, `http://${env.vips.web}/unretried?fail=0.5`, 200, 1);
    const rawOk = raw.status['200'] ?? 0;
    assert.ok(rawOk > 40 && rawOk < 160, `without retries about half succeed: ${JSON.stringify(raw.status)}`);
    const h = await hit(env, `http://${env.vips.web}/flaky?fail=0.5`, 200, 1);
    const ok = h.status['200'] ?? 0;
    assert.deepEqual(h.errors, []);
    assert.ok(ok >= 198, `with retries ${ok} of 200 succeeded (≥ 99 %): ${JSON.stringify(h.status)}`);
    assert.deepEqual(Object.keys(h.status).sort(), ok === 200 ? ['200'] : ['200', '503']);
  });

  test('a GRPCRoute routes unary and server-streaming calls of a real gRPC client, passing grpc-status through', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      {
        apiVersion: GATEWAY_API,
        kind: 'GRPCRoute',
        metadata: { name: 'echo', namespace: NS },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'grpc', port: 9090 }],
          rules: [
            {
              matches: [{ method: { service: 'ambit.sample.v1.Echo', method: 'Stream' } }],
              backendRefs: [backend('grpc-v2', undefined, 9090)],
            },
            {
              matches: [{ method: { service: 'ambit.sample.v1.Echo' } }],
              backendRefs: [backend('grpc-v1', undefined, 9090)],
            },
          ],
        },
      },
    ]);
    const target = `${env.vips.grpc}:9090`;
    type Call = {
      rpc: string;
      replies: Array<{ message: string; version: string; sequence: number; peer: string }>;
      status: { code: number; name: string; details: string };
    };
    const call = async (args: string[]): Promise<{ code: number; result: Call; stderr: string }> => {
      const r = await env.lab.exec(
        'client',
        ['ambit', 'sample', 'grpc-client', '--target', target, ...args],
        {
          timeoutMs: 30_000,
        },
      );
      return { code: r.code, result: JSON.parse(r.stdout || '{}') as Call, stderr: r.stderr };
    };
    // Routed by method: unary to v1, the stream to v2 (round robin over both would mix them).
    await eventually(
      async () => {
        for (let i = 0; i < 3; i++) {
          const u = await call(['--message', 'probe']);
          const s = await call(['--message', 'probe', '--stream', '1']);
          if (u.result.replies?.[0]?.version !== 'v1' || s.result.replies?.[0]?.version !== 'v2')
            return undefined;
        }
        return true;
      },
      30_000,
      'the waypoint to route the GRPCRoute by method',
    );
    const unary = await call(['--message', 'hello']);
    assert.equal(unary.code, 0, unary.stderr);
    assert.equal(unary.result.rpc, 'Echo');
    assert.deepEqual(unary.result.status, { code: 0, name: 'OK', details: 'OK' });
    assert.equal(unary.result.replies.length, 1);
    assert.equal(unary.result.replies[0]?.message, 'hello');
    assert.equal(unary.result.replies[0]?.version, 'v1');

    const stream = await call(['--message', 'tick', '--stream', '5', '--interval', '20']);
    assert.equal(stream.code, 0, stream.stderr);
    assert.equal(stream.result.status.code, 0);
    assert.deepEqual(
      stream.result.replies.map((r) => [r.message, r.sequence, r.version]),
      [1, 2, 3, 4, 5].map((n) => ['tick', n, 'v2']),
      'five streamed replies, in order, from v2',
    );

    // The server refuses a stream over its limit: INVALID_ARGUMENT and its message reach the client.
    const refused = await call(['--message', 'x', '--stream', '10001']);
    assert.equal(refused.code, 1, 'the client exits 1 on a non-OK status');
    assert.equal(refused.result.status.code, 3);
    assert.equal(refused.result.status.name, 'INVALID_ARGUMENT');
    assert.match(refused.result.status.details, /count must be at most 10000/);
  });

  test('a WebSocket upgrade through the waypoint echoes text and binary messages and closes cleanly', async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('ws', 'a', [{ matches: [pathPrefix('/ws')], backendRefs: [backend('web-v1')] }]),
    ]);
    await routed(env, 'ws', 'a');
    const r = await env.lab.exec(
      'client',
      [process.execPath, '--input-type=module', '-e', WEBSOCKET, `ws://${env.vips.web}/ws/chat`],
      { timeoutMs: 30_000 },
    );
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}\n${await waypointLog(env)}`);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}');
    assert.deepEqual(out, {
      got: [{ text: 'hello through the waypoint' }, { binary: [0, 1, 2, 253, 254, 255] }],
      code: 1000,
      clean: true,
    });
  });

  test('ambit waypoint config shows what the replica holds, from its admin socket', async (t) => {
    if (skipUnlessRoot(t)) return;
    const env2 = { AMBIT_HOME: env.mesh.home, AMBIT_LAB: env.mesh.lab.name };
    const r = await ambit(['waypoint', 'config', WAYPOINT, '-n', NS, '-o', 'json'], env2);
    assert.equal(r.code, 0, r.stderr);
    const views = JSON.parse(r.stdout) as Record<
      string,
      {
        routes: { httpRoutes: Array<{ metadata: { name: string } }> };
        clusters: { clusters: Array<{ name: string; protocol: string; endpoints: number }> };
        endpoints: { endpoints: Array<{ cluster: string; endpoints: Array<{ address: string }> }> };
      }
    >;
    const replica = views[env.waypoint.name];
    assert.ok(replica, `the replica ${env.waypoint.name} answered: ${Object.keys(views)}`);
    const web = replica.clusters.clusters.find((c) => c.name === `web.${NS}.svc.cluster.local:80`);
    assert.deepEqual(web && [web.protocol, web.endpoints], ['http', 2]);
    const eps = replica.endpoints.endpoints.find((c) => c.cluster === `web-v1.${NS}.svc.cluster.local:80`);
    assert.deepEqual(
      eps?.endpoints.map((e) => e.address),
      [env.pods['web-v1']],
    );
    assert.ok(replica.routes.httpRoutes.length > 0, 'the routes applied so far are held');
    // And where its memory is: the replica runs from the build, as every daemon does under `npm test`.
    const m = await ambit(['waypoint', 'config', WAYPOINT, 'memory', '-n', NS, '-o', 'json'], env2);
    assert.equal(m.code, 0, m.stderr);
    const memory = (JSON.parse(m.stdout) as Record<string, { memory: MemoryReport }>)[env.waypoint.name];
    assert.equal(memory?.memory.build, 'bundle');
    assert.ok(memory.memory.rss > 0 && memory.memory.heap.used > 0);
  });

  test("istio_requests_total on the waypoint pod's metrics names the service, the code and the client", async (t) => {
    if (skipUnlessRoot(t)) return;
    await apply(env, [
      httpRoute('plain', 'a', [
        { matches: [pathPrefix('/plain')], backendRefs: [backend('web', undefined)] },
      ]),
    ]);
    await routed(env, 'plain', 'a');
    const h = await hit(env, `http://${env.vips.web}/plain`, 10, 1);
    assert.deepEqual(h.status, { 200: 10 });
    // One series per endpoint (web has v1 and v2 behind it): together they count every request.
    const lines = await eventually(
      async () => {
        const found = (await waypointMetrics(env))
          .split('\n')
          .filter(
            (l) =>
              l.startsWith('istio_requests_total{') &&
              l.includes('reporter="waypoint"') &&
              l.includes(`destination_service="web.${NS}.svc.cluster.local"`) &&
              l.includes('response_code="200"') &&
              l.includes(`source_principal="${CLIENT_PRINCIPAL}"`),
          );
        return found.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0) >= 10 ? found : undefined;
      },
      15_000,
      'the waypoint to count the 10 requests to web',
    );
    for (const line of lines) {
      assert.match(line, /source_workload="client"/);
      assert.match(line, new RegExp(`source_workload_namespace="${NS}"`));
      assert.match(line, /destination_service_name="web"/);
      assert.match(line, /destination_workload="web-v[12]"/);
    }
  });

  test('a waypoint for workloads takes what is addressed to a pod that uses it, and delivers it to that pod', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin } = env.mesh;
    const direct = await lab.addPod({
      name: 'direct',
      node: 'node-2',
      namespace: NS,
      serviceAccount: 'direct',
      labels: { app: 'direct', 'istio.io/use-waypoint': 'wl' },
    });
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        {
          apiVersion: GATEWAY_API,
          kind: 'Gateway',
          metadata: { name: 'wl', namespace: NS, labels: { 'istio.io/waypoint-for': 'workload' } },
          spec: {
            gatewayClassName: 'istio-waypoint',
            listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
          },
        },
      ],
    });
    await lab.run('direct', ['ambit', 'sample', 'echo', '--port', '8080']);
    await enrolled(lab, 'node-2', [direct.address], 30_000);
    // Through the workload's waypoint (it adds x-forwarded-proto), to the pod itself.
    const seen = await eventually(
      async () => {
        const r = await curl(env, [`http://${direct.address}:8080/direct?x=1`]);
        if (r.code !== 0) return undefined;
        const body = JSON.parse(r.stdout);
        return body.request?.headers?.['x-forwarded-proto'] === 'http' ? body : undefined;
      },
      60_000,
      'requests to the pod to go through waypoint wl',
    );
    assert.equal(seen.pod, 'direct');
    assert.equal(seen.request.path, '/direct');
  });

  test('outlier detection (DestinationRule) ejects a backend that always fails; the rest takes the traffic', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab, admin } = env.mesh;
    const labels = { app: 'outlier', pool: 'outlier' };
    const good = await lab.addPod({
      name: 'good',
      node: 'node-1',
      namespace: NS,
      serviceAccount: 'web',
      labels,
    });
    // Nothing listens in this one: every connection to it is refused (a gateway error, 503 UF).
    const broken = await lab.addPod({
      name: 'broken',
      node: 'node-2',
      namespace: NS,
      serviceAccount: 'web',
      labels,
    });
    await lab.run('good', ['ambit', 'sample', 'echo', '--port', '8080']);
    await admin.call('POST', '/ambit/v1/apply', {
      objects: [
        service('web-outlier', { pool: 'outlier' }, http('http')),
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'DestinationRule',
          metadata: { name: 'web-outlier', namespace: NS },
          spec: {
            host: 'web-outlier',
            trafficPolicy: {
              loadBalancer: { simple: 'ROUND_ROBIN' },
              outlierDetection: {
                consecutiveGatewayErrors: 2,
                interval: '1s',
                baseEjectionTime: '60s',
                maxEjectionPercent: 100,
              },
            },
          },
        },
      ],
    });
    await enrolled(lab, 'node-1', [good.address], 30_000);
    await enrolled(lab, 'node-2', [broken.address], 30_000);
    // The good one serves before the DestinationRule's backend sees any request (else it, too, is ejected).
    await eventually(
      async () => ((await curl(env, [`http://${good.address}:8080/`])).code === 0 ? true : undefined),
      30_000,
      'the good endpoint to serve',
    );
    const { items } = await admin.call<{
      items: Array<{ name: string; vips: string[]; endpoints: unknown[] }>;
    }>('GET', `/ambit/v1/services?namespace=${NS}`);
    const vip = items.find((x) => x.name === 'web-outlier')?.vips[0];
    assert.ok(vip, 'web-outlier has a VIP');
    // Both are endpoints: until the broken one is ejected, some requests fail.
    const first = await eventually(
      async () => {
        const h = await hit(env, `http://${vip}/first`, 10, 1);
        return (h.status['503'] ?? 0) > 0 ? h : undefined;
      },
      30_000,
      'the broken endpoint to be tried (503)',
    );
    assert.ok(
      (first.status['200'] ?? 0) > 0,
      `the good endpoint answers too: ${JSON.stringify(first.status)}`,
    );
    // Ejected after two consecutive gateway errors: from then on every request goes to the good one.
    const after = await hit(env, `http://${vip}/after`, 30, 1);
    assert.deepEqual(after.status, { 200: 30 }, `after ejection: ${JSON.stringify(after)}`);
  });

  test('a backend closing an idle keep-alive connection (Node default, 5 s) does not hang the next request', async (t) => {
    if (skipUnlessRoot(t)) return;
    const url = `http://${env.vips['web-idle']}/idle`;
    const first = await curl(env, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url]);
    assert.equal(first.stdout, '200', first.stderr);
    // The echo closes the waypoint's connection after 5 s of silence: wait until it has.
    await eventually(
      async () => {
        const ss = await env.lab.exec('web-v2', ['ss', '-Htn']);
        return ss.stdout.split('\n').some((l) => l.startsWith('ESTAB') && l.includes(':8081 '))
          ? undefined
          : true;
      },
      20_000,
      'the echo on :8081 to close its idle connections',
    );
    const next = await curl(env, ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url]);
    assert.equal(
      next.stdout,
      '200',
      `the request after the idle close: curl ${next.code} ${next.stderr}\nwaypoint: ${await accessLine(env, '/idle', 1)}\nechoes served /idle ${(await served(env, 'web-v2', '/idle')).length} time(s)`,
    );
  });
});
