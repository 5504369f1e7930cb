// L7 policy at the waypoint as a user meets it (root): `ambit demo` with a waypoint for shop, then
// Istio's L7 scenarios applied with `ambit apply` and checked from the client pod — the storefront's
// "catalog answers only GET from the frontend" (403 `RBAC: access denied` for the client's DELETE while
// the frontend's GET works), a JWT-protected frontend (valid, expired, wrong issuer, missing), CUSTOM
// with a small external authorizer, a 10 requests/s limit (429 with retry-after and the ratelimit
// headers), the same limit held by two waypoint replicas through Redis, and one request's trace
// through frontend → catalog → ratings arriving at an OTLP collector with its parent/child links.
// The collector, Redis and the authorizer run in a pod of their own, outside the mesh.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { stringify } from 'yaml';
import { cliLab, eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const EXAMPLES = join(ROOT, 'examples/storefront');
const COLLECTOR = join(ROOT, 'test/helpers/otlp.ts');

/** Sends the requests given as JSON (one new connection each, `parallel` at a time); prints the answers. */
const REQUEST = `
import * as http from 'node:http';
const { requests, parallel = 1 } = JSON.parse(process.argv[1]);
const one = (r) => new Promise((done) => {
  const u = new URL(r.url);
  const req = http.request({ host: u.hostname, port: u.port || 80, path: u.pathname + u.search, method: r.method ?? 'GET', headers: r.headers ?? {}, agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => done({ status: res.statusCode, headers: res.headers, body: body.slice(0, 300), at: Date.now() }));
  });
  req.setTimeout(10000, () => req.destroy(new Error('timeout')));
  req.on('error', (e) => done({ status: 0, body: String(e), headers: {}, at: Date.now() }));
  req.end();
});
const out = new Array(requests.length);
let next = 0;
await Promise.all(Array.from({ length: parallel }, async () => {
  while (next < requests.length) { const i = next++; out[i] = await one(requests[i]); }
}));
console.log(JSON.stringify(out));
`;

/** A small external authorizer: allows a request whose check carries `x-ext-authz: allow`. */
const AUTHORIZER = `
import * as http from 'node:http';
http.createServer((req, res) => {
  if (req.headers['x-ext-authz'] === 'allow') res.writeHead(200, { 'x-ext-authz-check-result': 'allowed' }).end();
  else res.writeHead(403, { 'content-type': 'text/plain', 'x-ext-authz-check-result': 'denied' }).end('denied by ext_authz for not found header x-ext-authz: allow');
}).listen(9000, '0.0.0.0');
`;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  at: number;
}

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  attributes: Record<string, string | number | boolean>;
}

/**
 * The waypoint's server spans of one request, client → frontend → catalog → ratings, each the child of
 * a client span of the waypoint whose parent is the server span before (the apps passed the context
 * on), the first continuing the client's own span; undefined when the trace is not complete.
 */
function linkedChain(spans: Span[], parent: string): Span[] | undefined {
  const servers = spans.filter((s) => s.kind === 'SPAN_KIND_SERVER');
  const clientOf = new Map(spans.filter((s) => s.kind === 'SPAN_KIND_CLIENT').map((s) => [s.spanId, s]));
  const childOf = (server: Span, path: string) =>
    servers.find(
      (s) =>
        String(s.attributes['url.path']).startsWith(path) &&
        clientOf.get(s.parentSpanId)?.parentSpanId === server.spanId,
    );
  const front = servers.find(
    (s) => s.parentSpanId === parent && s.attributes['url.path'] === '/api/products',
  );
  const catalog = front && childOf(front, '/products');
  const ratings = catalog && childOf(catalog, '/ratings/');
  return front && catalog && ratings ? [front, catalog, ratings] : undefined;
}

describe('L7 policy at the waypoint', {
  skip: !isRoot && 'NOT ROOT: waypoint end-to-end tests need root (CI runs them as root)',
}, () => {
  test("Istio's L7 scenarios through the demo's waypoint", async (t) => {
    if (skipUnlessRoot(t)) return;
    const cli = await cliLab('l');
    const { lab } = cli;
    const ok = async (args: string[], input?: string) => (await cli.ok(args, input)).stdout;
    const apply = (...docs: unknown[]) =>
      ok(['apply', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
    t.after(cli.down);

    await ok(['demo']);
    await ok(['waypoint', 'apply', '-n', 'shop', '--enroll-namespace', '--wait']);
    const services = JSON.parse(await ok(['get', 'services', '-n', 'shop', '-o', 'json'])) as {
      items: Array<{ name: string; vips: string[] }>;
    };
    const vip = (svc: string) => services.items.find((s) => s.name === svc)!.vips[0]!;
    const send = async (requests: Array<Record<string, unknown>>, parallel = 1): Promise<Answer[]> => {
      const r = await lab.exec(
        'client',
        [process.execPath, '--input-type=module', '-e', REQUEST, JSON.stringify({ requests, parallel })],
        {
          timeoutMs: 120_000,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Answer[];
    };
    const frontend = `http://${vip('frontend')}/api/products`;
    const catalog = `http://${vip('catalog')}/products`;

    // Outside the mesh: an OTLP collector, Redis, and an external authorizer, in a pod of their own.
    const obs = await lab.addPod({ name: 'obs', node: 'node-1', namespace: 'obs', serviceAccount: 'obs' });
    const collector = await lab.run('obs', [process.execPath, COLLECTOR, '0.0.0.0', '4318']);
    await lab.run('obs', [
      'redis-server',
      '--port',
      '6379',
      '--bind',
      '0.0.0.0',
      '--protected-mode',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
    ]);
    await lab.run('obs', [process.execPath, '--input-type=module', '-e', AUTHORIZER]);
    await eventually(
      async () => ((await lab.exec('obs', ['redis-cli', 'ping'])).stdout.includes('PONG') ? true : undefined),
      20_000,
      'redis in the obs pod',
    );
    await apply({
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'MeshConfig',
      metadata: { name: 'default' },
      spec: {
        extensionProviders: [
          {
            name: 'otel',
            opentelemetry: { service: obs.address, port: 4318, http: { path: '/v1/traces', timeout: '2s' } },
          },
          {
            name: 'ext-authz',
            envoyExtAuthzHttp: {
              service: obs.address,
              port: 9000,
              includeRequestHeadersInCheck: ['x-ext-authz'],
            },
          },
        ],
        // A loaded CI machine can take longer than the default 100 ms to reach Redis: give it time, so
        // that no check fails open (which would let more than the limit through).
        rateLimit: {
          backend: { type: 'Redis', redis: { url: `redis://${obs.address}:6379` } },
          timeout: '2s',
        },
      },
    });

    // 1. The storefront's example: catalog answers only GET from the frontend.
    await ok(['apply', '-f', join(EXAMPLES, 'catalog-get-from-frontend.yaml')]);
    const denied = await eventually(
      async () => {
        const [a] = await send([{ url: catalog, method: 'DELETE' }]);
        return a!.status === 403 ? a : undefined;
      },
      30_000,
      "the client's DELETE to be refused",
    );
    assert.equal(denied!.body, 'RBAC: access denied');
    const [clientGet] = await send([{ url: catalog }]);
    assert.equal(clientGet!.status, 403, 'the client is not the frontend');
    const [viaFrontend] = await send([{ url: frontend }]);
    assert.equal(viaFrontend!.status, 200, `the frontend's GET works: ${viaFrontend!.body}`);
    const status = JSON.parse(
      await ok(['get', 'authorizationpolicy', 'catalog-get-from-frontend', '-n', 'shop', '-o', 'json']),
    ) as { status: { conditions: Array<{ type: string; status: string; message: string }> } };
    const bound = status.status.conditions.find((c) => c.type === 'WaypointAccepted');
    assert.equal(bound?.status, 'True', JSON.stringify(status.status));
    assert.match(bound!.message, /bound to shop\/waypoint/);
    const policies = await ok(['waypoint', 'config', 'waypoint', 'policies', '-n', 'shop']);
    assert.match(
      policies,
      /Service shop\/catalog\s+AuthorizationPolicy\s+shop\/catalog-get-from-frontend\s+ALLOW/,
    );

    // 2. A trace the client started, through frontend → catalog → ratings, at the collector.
    await apply({
      apiVersion: 'telemetry.istio.io/v1',
      kind: 'Telemetry',
      metadata: { name: 'tracing', namespace: 'shop' },
      spec: { tracing: [{ providers: [{ name: 'otel' }], randomSamplingPercentage: 100 }] },
    });
    // Four traces at a time (only catalog v2 calls ratings), until one went the whole way. The first
    // requests may pass untraced while the waypoint loads the SDK.
    const spansAt = async () =>
      (await readFile(collector.log, 'utf8'))
        .split('\n')
        .filter((l) => l.startsWith('{"traceId"'))
        .map((l) => JSON.parse(l) as Span);
    const chain = await eventually(
      async () => {
        const tries = Array.from({ length: 4 }, () => ({
          traceId: randomBytes(16).toString('hex'),
          parent: randomBytes(8).toString('hex'),
        }));
        const answers = await send(
          tries.map((t) => ({ url: frontend, headers: { traceparent: `00-${t.traceId}-${t.parent}-01` } })),
        );
        for (const a of answers) assert.equal(a.status, 200, a.body);
        await new Promise((r) => setTimeout(r, 6_000)); // the exporter's batch leaves every 5 s
        const all = await spansAt();
        for (const t of tries) {
          const found = linkedChain(
            all.filter((s) => s.traceId === t.traceId),
            t.parent,
          );
          if (found) return found;
        }
        return undefined;
      },
      120_000,
      'a trace through frontend → catalog → ratings at the collector',
    );
    assert.deepEqual(
      chain.map((s) => String(s.attributes['url.path']).split('/')[1]),
      ['api', 'products', 'ratings'],
    );
    const wp = (await lab.status())!.pods.find(
      (p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint',
    )!;
    const exported = await lab.exec(wp.name, ['curl', '-s', 'http://127.0.0.1:15020/metrics']);
    assert.match(exported.stdout, /ambit_waypoint_tracing_spans\{provider="otel",outcome="exported"\} [1-9]/);
    await ok(['delete', 'telemetry', 'tracing', '-n', 'shop']);

    // 3. JWT: the frontend requires a token from one issuer.
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const token = (iss: string, exp: number) =>
      new SignJWT({ sub: 'alice' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(iss)
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(privateKey);
    const now = Math.floor(Date.now() / 1000);
    await apply(
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'RequestAuthentication',
        metadata: { name: 'frontend-jwt', namespace: 'shop' },
        spec: {
          targetRefs: [{ kind: 'Service', group: '', name: 'frontend' }],
          jwtRules: [{ issuer: 'https://issuer.example', jwks: JSON.stringify({ keys: [jwk] }) }],
        },
      },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'frontend-needs-jwt', namespace: 'shop' },
        spec: {
          targetRefs: [{ kind: 'Service', group: '', name: 'frontend' }],
          action: 'ALLOW',
          rules: [{ from: [{ source: { requestPrincipals: ['https://issuer.example/alice'] } }] }],
        },
      },
    );
    const bearer = async (jwt: string) => ({ authorization: `Bearer ${jwt}` });
    await eventually(
      async () => ((await send([{ url: frontend }]))[0]!.status === 403 ? true : undefined),
      30_000,
      'a request without a token to be refused',
    );
    const [valid, expired, wrongIssuer, missing] = await send([
      { url: frontend, headers: await bearer(await token('https://issuer.example', now + 600)) },
      { url: frontend, headers: await bearer(await token('https://issuer.example', now - 600)) },
      { url: frontend, headers: await bearer(await token('https://other.example', now + 600)) },
      { url: frontend },
    ]);
    assert.equal(valid!.status, 200, valid!.body);
    assert.equal(expired!.status, 401);
    assert.equal(expired!.body, 'Jwt is expired');
    assert.equal(wrongIssuer!.status, 401);
    assert.equal(wrongIssuer!.body, 'Jwt issuer is not configured');
    assert.equal(missing!.status, 403, 'no token: no request principal, so the ALLOW policy refuses');
    assert.equal(missing!.body, 'RBAC: access denied');
    await ok(['delete', 'requestauthentication', 'frontend-jwt', '-n', 'shop']);
    await ok(['delete', 'authorizationpolicy', 'frontend-needs-jwt', '-n', 'shop']);

    // 4. CUSTOM: an external authorizer decides requests to /api/private.
    await apply({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'ext-authz', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'frontend' }],
        action: 'CUSTOM',
        provider: { name: 'ext-authz' },
        rules: [{ to: [{ operation: { paths: ['/api/private*'] } }] }],
      },
    });
    const privateUrl = `http://${vip('frontend')}/api/private`;
    await eventually(
      async () => ((await send([{ url: privateUrl }]))[0]!.status === 403 ? true : undefined),
      30_000,
      'the authorizer to refuse',
    );
    const [refused, allowed, open] = await send([
      { url: privateUrl },
      { url: privateUrl, headers: { 'x-ext-authz': 'allow' } },
      { url: frontend },
    ]);
    assert.match(refused!.body, /denied by ext_authz/);
    assert.notEqual(allowed!.status, 403, 'allowed by the authorizer: the frontend answers itself');
    assert.equal(open!.status, 200, 'a path no CUSTOM rule matches is not sent to the authorizer');
    await ok(['delete', 'authorizationpolicy', 'ext-authz', '-n', 'shop']);

    // 5. The storefront's example: 10 requests/s to the frontend, per replica.
    await ok(['apply', '-f', join(EXAMPLES, 'frontend-rate-limit.yaml')]);
    const limited = await eventually(
      async () => {
        const answers = await send(
          Array.from({ length: 40 }, () => ({ url: frontend })),
          8,
        );
        return answers.some((a) => a.status === 429) ? answers : undefined;
      },
      30_000,
      'requests beyond 10/s to be limited',
    );
    const over = limited.find((a) => a.status === 429)!;
    assert.equal(over.body, 'local_rate_limited');
    assert.ok(Number(over.headers['retry-after']) >= 1, JSON.stringify(over.headers));
    assert.match(over.headers.ratelimit ?? '', /;r=0;t=\d+/);
    assert.match(over.headers['ratelimit-policy'] ?? '', /;q=10;w=1/);
    assert.ok(limited.filter((a) => a.status === 200).length >= 1);
    await ok(['delete', 'ratelimitpolicy', 'frontend-10rps', '-n', 'shop']);

    // 6. The same limit across two replicas, through Redis.
    await ok(['waypoint', 'apply', '-n', 'shop', '--replicas', '2', '--wait']);
    await apply({
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'RateLimitPolicy',
      metadata: { name: 'frontend-global', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'frontend' }],
        global: { rules: [{ limit: { requests: 10, unit: 'Second' } }] },
      },
    });
    const replicas = (await lab.status())!.pods.filter(
      (p) => p.labels['gateway.networking.k8s.io/gateway-name'] === 'waypoint',
    );
    assert.equal(replicas.length, 2);
    const globally = await eventually(
      async () => {
        const answers = await send(
          Array.from({ length: 60 }, () => ({ url: frontend })),
          6,
        );
        return answers.some((a) => a.status === 429) ? answers : undefined;
      },
      60_000,
      'the global limit to apply',
    );
    const windows = new Set(globally.map((a) => Math.floor(a.at / 1000)));
    const passed = globally.filter((a) => a.status === 200).length;
    assert.ok(
      passed <= 10 * (windows.size + 1),
      `${passed} passed in ${windows.size} one-second windows: the two replicas share one limit`,
    );
    const throttled = globally.find((a) => a.status === 429)!;
    assert.equal(throttled.headers['x-envoy-ratelimited'], 'true');
    // Both replicas took part (each counted requests to the frontend).
    for (const r of replicas) {
      const m = await lab.exec(r.name, ['curl', '-s', 'http://127.0.0.1:15020/metrics']);
      assert.match(
        m.stdout,
        /istio_requests_total\{[^}]*destination_service="frontend\.shop\.svc\.cluster\.local"[^}]*response_code="429"/,
        r.name,
      );
    }
    // The counters live in Redis (each window's key expires with it, so count the increments instead).
    const stats = await lab.exec('obs', ['redis-cli', 'info', 'commandstats']);
    const increments = Number(/cmdstat_incrby:calls=(\d+)/.exec(stats.stdout)?.[1] ?? 0);
    assert.ok(increments > 0, `${increments} INCRBY for ${globally.length} requests`);
  });
});
