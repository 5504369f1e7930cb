// L7 authorization at the waypoint's HTTP core on loopback, through the real request gate: a DENY and an
// ALLOW-only policy answer as Envoy's RBAC filter does (403 `RBAC: access denied`, no response flag), a
// CUSTOM policy asks an external authorizer the test runs (allow, deny passed through, unreachable with
// statusOnError or failOpen, UAEX), an Upgrade request is held to the same policies, and nothing that a
// policy denies reaches the backend.

import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import {
  type AuthorizationPolicyResource,
  assertValid,
  type MeshConfigResource,
  type RateLimitPolicyResource,
  type RequestAuthenticationResource,
} from '../../../src/config/index.ts';
import type { Logger } from '../../../src/log/index.ts';
import { PolicyGate } from '../../../src/waypoint/policy/index.ts';
import { eventually, forwardTo, harness, listen, request, table } from './http-harness.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet } as unknown as Logger;

const ap = (name: string, spec: Record<string, unknown>) =>
  assertValid({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'shop' },
    spec: { targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }], ...spec },
  }) as AuthorizationPolicyResource;

const mesh = (authzPort: number, more: Record<string, unknown> = {}) =>
  assertValid({
    apiVersion: 'ambit.dev/v1alpha1',
    kind: 'MeshConfig',
    metadata: { name: 'default' },
    spec: {
      extensionProviders: [
        {
          name: 'authz',
          envoyExtAuthzHttp: {
            service: '127.0.0.1',
            port: authzPort,
            includeRequestHeadersInCheck: ['x-ext-authz'],
            headersToUpstreamOnAllow: ['x-authz-user'],
            headersToDownstreamOnDeny: ['x-authz-reason'],
            ...more,
          },
        },
      ],
    },
  }) as MeshConfigResource;

function gate(policies: AuthorizationPolicyResource[], meshConfig?: MeshConfigResource): PolicyGate {
  const g = new PolicyGate({
    log: quiet,
    gateway: () => 'shop/waypoint',
    resolve: (service, port) => ({ host: service, port }),
  });
  g.update({ authorizationPolicies: policies, meshConfig });
  return g;
}

async function backend(t: Parameters<typeof listen>[0]) {
  const seen: http.IncomingHttpHeaders[] = [];
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    urls.push(req.url ?? '');
    res.end('served');
  });
  return { port: await listen(t, server), seen, urls };
}

/** Sends `text` as is on a new connection; resolves with all that came back before it closed. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (/\r\n\r\n/.test(got) && /content-length: (\d+)/i.test(got)) s.end();
    });
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    s.write(text);
  });
}

describe('waypoint L7 authorization', () => {
  test('DENY on a method and ALLOW only GET from one identity, as Envoy answers them', async (t) => {
    const b = await backend(t);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([
        ap('no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
        ap('get-from-web', {
          action: 'ALLOW',
          rules: [
            {
              from: [{ source: { principals: ['cluster.local/ns/shop/sa/web'] } }],
              to: [{ operation: { methods: ['GET'] } }],
            },
          ],
        }),
      ]),
    });
    const ok = await request(h.port, { path: '/r/1' });
    assert.equal(ok.status, 200);
    const del = await request(h.port, { path: '/r/1', method: 'DELETE' });
    assert.equal(del.status, 403);
    assert.equal(del.body, 'RBAC: access denied');
    const post = await request(h.port, { path: '/r/1', method: 'POST', body: 'x' });
    assert.equal(post.status, 403, 'not allowed by the ALLOW policy');
    assert.equal(b.seen.length, 1, 'denied requests never reach the backend');

    await eventually(() => h.access.length === 3);
    const byMethod = Object.fromEntries(h.access.map((l) => [l.method, l]));
    assert.equal(
      byMethod.DELETE?.details,
      'rbac_access_denied_matched_policy[ns[shop]-policy[no-delete]-rule[0]]',
    );
    assert.equal(byMethod.POST?.details, 'rbac_access_denied_matched_policy[none]');
    assert.equal(byMethod.DELETE?.flags, '-', 'Envoy sets no response flag for an RBAC denial');
    const metrics = await h.registry.metrics();
    assert.match(metrics, /istio_requests_total\{[^}]*response_code="403"[^}]*response_flags="-"[^}]*\} 2/);
  });

  test('the path is normalized before policy: dot segments cannot step around a DENY', async (t) => {
    const b = await backend(t);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([
        ap('no-admin', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }),
      ]),
    });
    for (const path of [
      '/admin',
      '/public/../admin',
      '/public/%2e%2e/admin/x',
      '/%61dmin',
      '/public\\..\\admin',
    ]) {
      const r = await request(h.port, { path });
      assert.equal(r.status, 403, path);
    }
    // An absolute-form target is read as its path (and the backend gets only that).
    assert.match(await raw(h.port, 'GET http://evil/admin HTTP/1.1\r\nhost: x\r\n\r\n'), /^HTTP\/1\.1 403/);
    // What a backend could read otherwise is refused: a fragment, an encoded NUL, a target that is no path.
    for (const target of ['/public/#/../admin', '/x%00', 'admin']) {
      const answer = await raw(h.port, `GET ${target} HTTP/1.1\r\nhost: x\r\n\r\n`);
      assert.match(answer, /^HTTP\/1\.1 400/, target);
    }
    assert.equal((await request(h.port, { path: '/public/./%7ex' })).status, 200);
    assert.equal(b.seen.length, 1);
    assert.equal(b.urls[0], '/public/~x', 'the backend gets the normalized path');
  });

  test('headers JWT authentication writes cannot be forged for authorization', async (t) => {
    const b = await backend(t);
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const ra = assertValid({
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'jwt', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        jwtRules: [
          {
            issuer: 'https://issuer.example',
            jwks: JSON.stringify({ keys: [jwk] }),
            outputClaimToHeaders: [{ header: 'x-jwt-group', claim: 'group' }],
          },
        ],
      },
    }) as RequestAuthenticationResource;
    const g = gate([]);
    g.update({
      authorizationPolicies: [
        ap('admins', {
          action: 'ALLOW',
          rules: [{ when: [{ key: 'request.headers[x-jwt-group]', values: ['admin'] }] }],
        }),
      ],
      requestAuthentications: [ra],
      meshConfig: undefined,
    });
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: g,
    });
    const forged = await request(h.port, { path: '/', headers: { 'x-jwt-group': 'admin' } });
    assert.equal(forged.status, 403, 'a client-sent x-jwt-group is taken out before authorization');
    const token = await new SignJWT({ sub: 'alice', group: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('https://issuer.example')
      .setExpirationTime('10m')
      .sign(privateKey);
    const real = await request(h.port, { path: '/', headers: { authorization: `Bearer ${token}` } });
    assert.equal(real.status, 200);
    assert.equal(b.seen[0]?.['x-jwt-group'], 'admin');
    assert.equal(b.seen[0]?.authorization, undefined, 'the token is not forwarded');
  });

  test('an HTTP/2 method that is not upper-case is refused, not matched past a DENY', async (t) => {
    const b = await backend(t);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      protocol: 'http2',
      gate: gate([
        ap('no-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
      ]),
    });
    const session = http2.connect(`http://127.0.0.1:${h.port}`);
    t.after(() => session.close());
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':method': 'delete', ':path': '/r/1' });
      stream.on('response', (head) => resolve(Number(head[':status'])));
      stream.on('error', reject);
      stream.end();
    });
    assert.equal(status, 400);
    assert.equal(b.seen.length, 0);
  });

  test('a connection that falls back to TCP is refused where rate limits bind', async (t) => {
    let bytes = 0;
    const sink = net.createServer((s) => s.on('data', (d: Buffer) => (bytes += d.length)));
    const port = await listen(t, sink);
    const rlp = assertValid({
      apiVersion: 'ambit.dev/v1alpha1',
      kind: 'RateLimitPolicy',
      metadata: { name: 'one', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
        local: { rules: [{ limit: { requests: 1, unit: 'Hour' } }] },
      },
    }) as RateLimitPolicyResource;
    const g = gate([]);
    g.update({ authorizationPolicies: [], rateLimitPolicies: [rlp], meshConfig: undefined });
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [port] },
      protocol: 'auto',
      gate: g,
    });
    const answer = await raw(h.port, 'not http at all\r\n\r\n');
    assert.equal(answer, '', 'the connection is reset, nothing answered');
    assert.equal(bytes, 0, 'nothing reached the backend');
  });

  test('CUSTOM asks the external authorizer: allow, deny as it answers, failure by statusOnError or failOpen', async (t) => {
    const b = await backend(t);
    const asked: Array<{ method?: string; url?: string; headers: http.IncomingHttpHeaders }> = [];
    const authz = http.createServer((req, res) => {
      asked.push({ method: req.method, url: req.url, headers: req.headers });
      if (req.headers['x-ext-authz'] === 'allow') {
        res.writeHead(200, { 'x-authz-user': 'alice', 'x-not-copied': '1' }).end();
      } else {
        res
          .writeHead(403, { 'x-authz-reason': 'not allowed', 'content-type': 'text/plain' })
          .end('denied by ext authz');
      }
    });
    const authzPort = await listen(t, authz);
    const custom = ap('ext', {
      action: 'CUSTOM',
      provider: { name: 'authz' },
      rules: [{ to: [{ operation: { paths: ['/private*'] } }] }],
    });
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([custom], mesh(authzPort, { pathPrefix: '/check' })),
    });
    const allowed = await request(h.port, {
      path: '/private/a?x=1',
      headers: { 'x-ext-authz': 'allow', authorization: 'Bearer t' },
    });
    assert.equal(allowed.status, 200);
    assert.equal(b.seen.at(-1)?.['x-authz-user'], 'alice', 'headersToUpstreamOnAllow reach the backend');
    assert.equal(b.seen.at(-1)?.['x-not-copied'], undefined);
    assert.equal(asked[0]?.url, '/check/private/a?x=1');
    assert.equal(asked[0]?.method, 'GET');
    assert.equal(asked[0]?.headers.authorization, 'Bearer t', 'Authorization is always sent');
    assert.equal(asked[0]?.headers['content-length'], '0');

    const denied = await request(h.port, { path: '/private/b', headers: { 'x-ext-authz': 'deny' } });
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'denied by ext authz');
    assert.equal(denied.headers['x-authz-reason'], 'not allowed');

    assert.equal(
      (await request(h.port, { path: '/public' })).status,
      200,
      'not matched: the authorizer is not asked',
    );
    assert.equal(asked.length, 2);

    authz.closeAllConnections();
    await new Promise((r) => authz.close(r));
    const down = await request(h.port, { path: '/private/c', headers: { 'x-ext-authz': 'allow' } });
    assert.equal(down.status, 403, "statusOnError's default");
    await eventually(() => h.access.length === 4);
    assert.deepEqual(
      h.access.map((l) => l.flags),
      ['-', 'UAEX', '-', 'UAEX'],
    );

    const open = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([custom], mesh(authzPort, { failOpen: true })),
    });
    assert.equal((await request(open.port, { path: '/private/d' })).status, 200, 'failOpen lets it through');
    const closed = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([custom], mesh(authzPort, { statusOnError: '503' })),
    });
    assert.equal((await request(closed.port, { path: '/private/e' })).status, 503);
  });

  test('a CUSTOM policy whose provider the mesh does not define denies what it matches', async (t) => {
    const b = await backend(t);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([ap('ext', { action: 'CUSTOM', provider: { name: 'missing' }, rules: [{}] })]),
    });
    const r = await request(h.port, { path: '/' });
    assert.equal(r.status, 403);
    assert.equal(b.seen.length, 0);
  });

  test('an Upgrade request is held to the same policies', async (t) => {
    const b = await backend(t);
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([ap('no-ws', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/ws'] } }] }] })]),
    });
    const r = await request(h.port, {
      path: '/ws',
      headers: { connection: 'upgrade', upgrade: 'websocket' },
    });
    assert.equal(r.status, 403);
    assert.equal(r.body, 'RBAC: access denied');
    assert.equal(b.seen.length, 0);
  });

  test('policies bound to another Service or Gateway do not apply', async (t) => {
    const b = await backend(t);
    const other = assertValid({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'other', namespace: 'shop' },
      spec: { targetRefs: [{ kind: 'Service', group: '', name: 'ratings' }], action: 'DENY', rules: [{}] },
    }) as AuthorizationPolicyResource;
    const gw = assertValid({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'gw', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        action: 'DENY',
        rules: [{ to: [{ operation: { methods: ['PUT'] } }] }],
      },
    }) as AuthorizationPolicyResource;
    const h = await harness(t, {
      routes: table((req) => forwardTo('shop/reviews', 9080, req)),
      endpoints: { 'shop/reviews': [b.port] },
      gate: gate([other, gw]),
    });
    assert.equal((await request(h.port, { path: '/' })).status, 200);
    assert.equal(
      (await request(h.port, { path: '/', method: 'PUT' })).status,
      403,
      'the Gateway policy applies to all',
    );
  });
});
