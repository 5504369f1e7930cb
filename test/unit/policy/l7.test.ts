// The waypoint's authorization rule language as tables of cases: Istio's documented examples as
// written, every `from` / `to` / `when` field and its `not…` form, the string and path match forms,
// CUSTOM → DENY → ALLOW order, AUDIT and dry-run, and failing closed on what cannot be evaluated.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type AuthorizationPolicyResource,
  assertValid,
  bindsTarget,
  validateResource,
} from '../../../src/config/index.ts';
import {
  compileL7Policy,
  evaluateL7,
  hostMatches,
  matchingCustom,
  pathMatches,
  type RequestAttributes,
} from '../../../src/policy/index.ts';

const policy = (spec: Record<string, unknown>, name = 'p', annotations?: Record<string, string>) =>
  compileL7Policy(
    assertValid({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name, namespace: 'shop', ...(annotations ? { annotations } : {}) },
      spec: { targetRefs: [{ kind: 'Service', group: '', name: 'catalog' }], ...spec },
    }) as AuthorizationPolicyResource,
  );

const request = (over: Partial<RequestAttributes> = {}): RequestAttributes => ({
  method: 'GET',
  path: '/items?page=2',
  host: 'catalog.shop.svc.cluster.local:8080',
  headers: { 'x-token': 'admin', 'user-agent': 'curl/8' },
  source: { principal: 'spiffe://cluster.local/ns/shop/sa/frontend', ip: '198.18.1.10' },
  remoteIp: '198.18.1.10',
  destination: { ip: '198.19.0.5', port: 8080 },
  ...over,
});

const AUTH = {
  principal: 'https://issuer.example/alice',
  audiences: ['catalog', 'shop'],
  presenter: 'web-app',
  claims: {
    iss: 'https://issuer.example',
    sub: 'alice',
    groups: ['admins', 'dev'],
    org: { team: { name: 'blue' } },
    level: 3,
  },
};

describe('L7 authorization: one rule against one request', () => {
  const cases: Array<{
    name: string;
    rule: Record<string, unknown>;
    req?: Partial<RequestAttributes>;
    match: boolean;
  }> = [
    { name: 'an empty rule matches everything', rule: {}, match: true },
    {
      name: 'principal exact',
      rule: { from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }] },
      match: true,
    },
    {
      name: 'principal of another',
      rule: { from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] },
      match: false,
    },
    {
      name: 'principal suffix',
      rule: { from: [{ source: { principals: ['*/sa/frontend'] } }] },
      match: true,
    },
    {
      name: 'principal any (authenticated)',
      rule: { from: [{ source: { principals: ['*'] } }] },
      match: true,
    },
    {
      name: 'principal any, unauthenticated peer',
      rule: { from: [{ source: { principals: ['*'] } }] },
      req: { source: { principal: '' } },
      match: false,
    },
    {
      name: 'notPrincipals excludes',
      rule: { from: [{ source: { notPrincipals: ['cluster.local/ns/shop/sa/frontend'] } }] },
      match: false,
    },
    { name: 'namespaces', rule: { from: [{ source: { namespaces: ['shop'] } }] }, match: true },
    { name: 'notNamespaces', rule: { from: [{ source: { notNamespaces: ['shop'] } }] }, match: false },
    {
      name: 'serviceAccounts',
      rule: { from: [{ source: { serviceAccounts: ['shop/frontend'] } }] },
      match: true,
    },
    { name: 'ipBlocks CIDR', rule: { from: [{ source: { ipBlocks: ['198.18.1.0/24'] } }] }, match: true },
    { name: 'notIpBlocks', rule: { from: [{ source: { notIpBlocks: ['198.18.1.10'] } }] }, match: false },
    {
      name: 'remoteIpBlocks',
      rule: { from: [{ source: { remoteIpBlocks: ['198.18.0.0/15'] } }] },
      match: true,
    },
    {
      name: 'requestPrincipals with a token',
      rule: { from: [{ source: { requestPrincipals: ['https://issuer.example/alice'] } }] },
      req: { auth: AUTH },
      match: true,
    },
    {
      name: 'requestPrincipals any, with no token',
      rule: { from: [{ source: { requestPrincipals: ['*'] } }] },
      match: false,
    },
    {
      name: 'notRequestPrincipals any, with no token (Istio: require a JWT)',
      rule: { from: [{ source: { notRequestPrincipals: ['*'] } }] },
      match: true,
    },
    {
      name: 'any of several sources',
      rule: { from: [{ source: { namespaces: ['other'] } }, { source: { namespaces: ['shop'] } }] },
      match: true,
    },
    { name: 'methods', rule: { to: [{ operation: { methods: ['GET', 'HEAD'] } }] }, match: true },
    {
      name: 'methods, DELETE',
      rule: { to: [{ operation: { methods: ['GET'] } }] },
      req: { method: 'DELETE' },
      match: false,
    },
    { name: 'notMethods', rule: { to: [{ operation: { notMethods: ['GET'] } }] }, match: false },
    { name: 'paths ignore the query', rule: { to: [{ operation: { paths: ['/items'] } }] }, match: true },
    { name: 'paths prefix', rule: { to: [{ operation: { paths: ['/it*'] } }] }, match: true },
    { name: 'paths suffix', rule: { to: [{ operation: { paths: ['*ems'] } }] }, match: true },
    { name: 'paths presence', rule: { to: [{ operation: { paths: ['*'] } }] }, match: true },
    { name: 'notPaths', rule: { to: [{ operation: { notPaths: ['/items'] } }] }, match: false },
    {
      name: 'path template {*}',
      rule: { to: [{ operation: { paths: ['/api/{*}/reviews'] } }] },
      req: { path: '/api/42/reviews' },
      match: true,
    },
    {
      name: 'path template {*} is one segment',
      rule: { to: [{ operation: { paths: ['/api/{*}/reviews'] } }] },
      req: { path: '/api/4/2/reviews' },
      match: false,
    },
    {
      name: 'path template {**}',
      rule: { to: [{ operation: { paths: ['/api/{**}'] } }] },
      req: { path: '/api/4/2/reviews' },
      match: true,
    },
    {
      name: 'hosts are exact: without a port, not the authority with one (Istio)',
      rule: { to: [{ operation: { hosts: ['catalog.shop.svc.cluster.local'] } }] },
      match: false,
    },
    {
      name: 'hosts with any port, as Istio documents it',
      rule: { to: [{ operation: { hosts: ['catalog.shop.svc.cluster.local:*'] } }] },
      match: true,
    },
    {
      name: 'hosts case-insensitive suffix',
      rule: { to: [{ operation: { hosts: ['*.SHOP.svc.cluster.local:8080'] } }] },
      match: true,
    },
    {
      name: 'an empty list is unset, not "none"',
      rule: { to: [{ operation: { paths: ['/items'], methods: [] } }] },
      match: true,
    },
    {
      name: 'empty values with notValues: only notValues count',
      rule: { when: [{ key: 'request.headers[x-token]', values: [], notValues: ['guest'] }] },
      match: true,
    },
    {
      name: 'a header sent empty is present for "*"',
      rule: { when: [{ key: 'request.headers[x-debug]', values: ['*'] }] },
      req: { headers: { 'x-debug': '' } },
      match: true,
    },
    {
      name: 'scope is a space-separated list, as Istio reads it',
      rule: { when: [{ key: 'request.auth.claims[scope]', values: ['admin'] }] },
      req: { auth: { ...AUTH, claims: { ...AUTH.claims, scope: 'read admin' } } },
      match: true,
    },
    { name: 'notHosts', rule: { to: [{ operation: { notHosts: ['catalog*'] } }] }, match: false },
    { name: 'ports', rule: { to: [{ operation: { ports: ['8080'] } }] }, match: true },
    { name: 'notPorts', rule: { to: [{ operation: { notPorts: ['8080'] } }] }, match: false },
    {
      name: 'request.headers exact',
      rule: { when: [{ key: 'request.headers[x-token]', values: ['admin'] }] },
      match: true,
    },
    {
      name: 'request.headers case of name',
      rule: { when: [{ key: 'request.headers[X-Token]', values: ['adm*'] }] },
      match: true,
    },
    {
      name: 'request.headers notValues',
      rule: { when: [{ key: 'request.headers[x-token]', notValues: ['admin'] }] },
      match: false,
    },
    {
      name: 'request.headers absent',
      rule: { when: [{ key: 'request.headers[x-missing]', values: ['*'] }] },
      match: false,
    },
    { name: 'source.ip', rule: { when: [{ key: 'source.ip', values: ['198.18.1.0/24'] }] }, match: true },
    { name: 'remote.ip', rule: { when: [{ key: 'remote.ip', values: ['198.18.1.10'] }] }, match: true },
    {
      name: 'source.namespace',
      rule: { when: [{ key: 'source.namespace', values: ['shop'] }] },
      match: true,
    },
    {
      name: 'source.principal',
      rule: { when: [{ key: 'source.principal', values: ['cluster.local/ns/shop/sa/frontend'] }] },
      match: true,
    },
    {
      name: 'destination.ip',
      rule: { when: [{ key: 'destination.ip', values: ['198.19.0.0/16'] }] },
      match: true,
    },
    {
      name: 'destination.port',
      rule: { when: [{ key: 'destination.port', values: ['8080'] }] },
      match: true,
    },
    {
      name: 'connection.sni: none on plaintext HTTP',
      rule: { when: [{ key: 'connection.sni', values: ['*'] }] },
      match: false,
    },
    {
      name: 'request.auth.principal',
      rule: { when: [{ key: 'request.auth.principal', values: ['https://issuer.example/alice'] }] },
      req: { auth: AUTH },
      match: true,
    },
    {
      name: 'request.auth.audiences',
      rule: { when: [{ key: 'request.auth.audiences', values: ['shop'] }] },
      req: { auth: AUTH },
      match: true,
    },
    {
      name: 'request.auth.presenter',
      rule: { when: [{ key: 'request.auth.presenter', values: ['web-app'] }] },
      req: { auth: AUTH },
      match: true,
    },
    {
      name: 'request.auth.claims list',
      rule: { when: [{ key: 'request.auth.claims[groups]', values: ['admins'] }] },
      req: { auth: AUTH },
      match: true,
    },
    {
      name: 'request.auth.claims nested',
      rule: { when: [{ key: 'request.auth.claims[org][team][name]', values: ['blue'] }] },
      req: { auth: AUTH },
      match: true,
    },
    {
      name: 'request.auth.claims number',
      rule: { when: [{ key: 'request.auth.claims[level]', values: ['3'] }] },
      req: { auth: AUTH },
      match: true,
    },
    {
      name: 'request.auth.claims without a token',
      rule: { when: [{ key: 'request.auth.claims[groups]', values: ['admins'] }] },
      match: false,
    },
    {
      name: 'every when must hold',
      rule: {
        when: [
          { key: 'request.headers[x-token]', values: ['admin'] },
          { key: 'destination.port', values: ['9'] },
        ],
      },
      match: false,
    },
    {
      name: 'from, to and when together',
      rule: {
        from: [{ source: { namespaces: ['shop'] } }],
        to: [{ operation: { methods: ['GET'] } }],
        when: [{ key: 'request.headers[user-agent]', values: ['curl*'] }],
      },
      match: true,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const p = policy({ action: 'ALLOW', rules: [c.rule] });
      assert.equal(p.match(request(c.req)) >= 0, c.match);
    });
  }
});

describe('L7 authorization: decisions in Istio order', () => {
  test("Istio's 'allow only GET from one service account' example", () => {
    const allow = policy({
      action: 'ALLOW',
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/shop/sa/frontend'] } }],
          to: [{ operation: { methods: ['GET'] } }],
        },
      ],
    });
    assert.equal(evaluateL7([allow], request()).allow, true);
    const del = evaluateL7([allow], request({ method: 'DELETE' }));
    assert.equal(del.allow, false);
    assert.equal(del.details, 'rbac_access_denied_matched_policy[none]');
    const other = request({ source: { principal: 'spiffe://cluster.local/ns/shop/sa/client' } });
    assert.equal(evaluateL7([allow], other).allow, false);
  });

  test('DENY wins over ALLOW, and names its policy and rule', () => {
    const allow = policy({ action: 'ALLOW', rules: [{}] }, 'allow-all');
    const deny = policy(
      {
        action: 'DENY',
        rules: [
          { to: [{ operation: { methods: ['POST'] } }] },
          { to: [{ operation: { methods: ['DELETE'] } }] },
        ],
      },
      'no-writes',
    );
    const d = evaluateL7([allow, deny], request({ method: 'DELETE' }));
    assert.equal(d.allow, false);
    assert.equal(d.policy, 'shop/no-writes');
    assert.equal(d.details, 'rbac_access_denied_matched_policy[ns[shop]-policy[no-writes]-rule[1]]');
    assert.equal(evaluateL7([allow, deny], request()).allow, true);
  });

  test("'deny unless a header' (DENY with notValues)", () => {
    const deny = policy({
      action: 'DENY',
      rules: [{ when: [{ key: 'request.headers[x-token]', notValues: ['admin'] }] }],
    });
    assert.equal(evaluateL7([deny], request()).allow, true);
    assert.equal(evaluateL7([deny], request({ headers: { 'x-token': 'guest' } })).allow, false);
    assert.equal(evaluateL7([deny], request({ headers: {} })).allow, false);
  });

  test('no policy allows; an ALLOW policy with no rules allows nothing', () => {
    assert.equal(evaluateL7([], request()).allow, true);
    assert.equal(evaluateL7([policy({ action: 'ALLOW' })], request()).allow, false);
  });

  test('AUDIT never decides; dry-run policies are reported and never enforced', () => {
    const audit = policy({ action: 'AUDIT', rules: [{}] }, 'audit');
    const dry = policy({ action: 'DENY', rules: [{}] }, 'dry', { 'istio.io/dry-run': 'true' });
    const d = evaluateL7([audit, dry], request());
    assert.equal(d.allow, true);
    assert.deepEqual(d.audit, ['shop/audit']);
    assert.deepEqual(d.dryRun, ['shop/dry']);
  });

  test('CUSTOM policies that match are asked first, by provider', () => {
    const custom = policy({
      action: 'CUSTOM',
      provider: { name: 'authz' },
      rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }],
    });
    assert.deepEqual(
      matchingCustom([custom], request({ path: '/admin/x' })).map((p) => p.provider),
      ['authz'],
    );
    assert.deepEqual(matchingCustom([custom], request()), []);
  });
});

describe('L7 authorization fails closed on what it cannot evaluate', () => {
  const mysql = { key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[users]'] };
  test('an unknown when key never lets ALLOW match, and makes DENY match', () => {
    assert.equal(policy({ action: 'ALLOW', rules: [{ when: [mysql] }] }).match(request()), -1);
    assert.equal(policy({ action: 'DENY', rules: [{ when: [mysql] }] }).match(request()), 0);
    const sni = { key: 'connection.sni', notValues: ['*.example'] };
    assert.equal(policy({ action: 'ALLOW', rules: [{ when: [sni] }] }).match(request()), -1);
    assert.equal(policy({ action: 'DENY', rules: [{ when: [sni] }] }).match(request()), 0);
  });

  test('a connection passed through as TCP: HTTP fields never match ALLOW and widen DENY', () => {
    const tcp = request({ tcp: true, method: '', path: '', host: '', headers: {} });
    const allowGet = policy({ action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
    const denyDelete = policy({ action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] });
    const allowFrom = policy({ action: 'ALLOW', rules: [{ from: [{ source: { namespaces: ['shop'] } }] }] });
    assert.equal(allowGet.match(tcp), -1);
    assert.equal(denyDelete.match(tcp), 0);
    assert.equal(allowFrom.match(tcp), 0, 'L4 fields still decide');
  });
});

describe('match forms', () => {
  test('hosts', () => {
    assert.equal(hostMatches('example.com', 'EXAMPLE.com'), true);
    assert.equal(hostMatches('example.com', 'example.com:80'), false);
    assert.equal(hostMatches('example.com:*', 'example.com:80'), true);
    assert.equal(hostMatches('*.com', 'a.example.com'), true);
    assert.equal(hostMatches('example.*', 'example.org:8443'), true);
  });
  test('paths', () => {
    assert.equal(pathMatches('/a/{*}', '/a/'), false, '{*} is a non-empty segment');
    assert.equal(pathMatches('/a/{**}', '/a'), false);
    assert.equal(pathMatches('/a/{*}/c/{**}', '/a/b/c/d/e'), true);
    assert.equal(pathMatches('/a', '/A'), false, 'paths are case-sensitive');
  });
});

describe('operation paths are validated', () => {
  const errorsOf = (paths: string[]) => {
    const r = validateResource({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'catalog' }],
        rules: [{ to: [{ operation: { paths } }] }],
      },
    });
    return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
  };
  test('regular expressions are refused with the field named', () => {
    for (const p of ['^/api', '/api/.*', '/api/[0-9]+', '/a|/b', '/api$']) {
      const errors = errorsOf([p]);
      assert.equal(errors.length, 1, p);
      assert.match(
        errors[0]!,
        /spec\.rules\[0\]\.to\[0\]\.operation\.paths\[0\]: looks like a regular expression/,
      );
    }
  });
  test('templates must be whole segments, {**} last', () => {
    assert.match(errorsOf(['/a/x{*}'])[0]!, /must be exactly \{\*\} or \{\*\*\}/);
    assert.match(errorsOf(['/a/{**}/b'])[0]!, /\{\*\*\} may only be the last segment/);
    assert.match(errorsOf(['/a/*/b'])[0]!, /"\*" only at one end/);
    assert.deepEqual(errorsOf(['/a/{*}/b/{**}', '/prefix*', '*suffix', '*', '/exact']), []);
  });
});

describe("a waypoint policy's status names what it cannot evaluate", () => {
  test('connection.sni and the MySQL filter key fail closed, and the status says so', () => {
    const r = validateResource({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'catalog' }],
        rules: [{ when: [{ key: 'connection.sni', values: ['*.example'] }] }],
      },
    });
    assert.ok(r.ok);
    assert.equal(r.conditions[0]!.reason, 'UnsupportedValue');
    assert.match(r.conditions[0]!.message, /cannot evaluate connection\.sni .*fails closed/);
    const fine = validateResource({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'p', namespace: 'shop' },
      spec: {
        targetRefs: [{ kind: 'Service', group: '', name: 'catalog' }],
        rules: [
          {
            when: [
              { key: 'request.auth.claims[org][team]', values: ['blue'] },
              { key: 'request.headers[x-a]', values: ['1'] },
            ],
          },
        ],
      },
    });
    assert.ok(fine.ok);
    assert.equal(fine.conditions[0]!.reason, 'Accepted');
  });
});

describe('targetRefs: kind and group', () => {
  const spec = (ref: Record<string, unknown>) => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'p', namespace: 'shop' },
    spec: { targetRefs: [ref], action: 'DENY', rules: [{}] },
  });
  test("a group that is not the kind's is refused at apply, naming the field", () => {
    const r = validateResource(spec({ kind: 'Service', group: 'networking.istio.io', name: 'web' }));
    assert.ok(!r.ok);
    assert.match(JSON.stringify(r.errors), /targetRefs\[0\]\.group/);
  });
  test('the group may be left out; it binds what the kind names', () => {
    const r = validateResource(spec({ kind: 'Gateway', name: 'waypoint' }));
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    const p = r.resource as AuthorizationPolicyResource;
    assert.equal(bindsTarget(p, { gateway: 'shop/waypoint', service: undefined }), true);
    assert.equal(bindsTarget(p, { gateway: 'other/waypoint', service: undefined }), false);
    const svc = validateResource(spec({ kind: 'Service', group: '', name: 'web' }));
    assert.ok(svc.ok);
    assert.equal(
      bindsTarget(svc.resource as AuthorizationPolicyResource, { gateway: 'shop/wp', service: 'shop/web' }),
      true,
    );
  });
});
