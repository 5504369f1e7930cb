import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AuthorizationPolicyResource, assertValid } from '../../../src/config/index.ts';
import {
  evaluateL4,
  ipInCidr,
  type L4Authorization,
  type L4Connection,
  type PolicyScope,
  stringMatches,
  toL4Authorization,
} from '../../../src/policy/index.ts';

function policy(
  name: string,
  spec: unknown,
  opts: { scope?: PolicyScope; annotations?: Record<string, string> } = {},
): L4Authorization {
  const resource = assertValid({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'app', ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec,
  }) as AuthorizationPolicyResource;
  return toL4Authorization(resource, opts.scope ?? 'namespace');
}

const FOO = 'spiffe://cluster.local/ns/foo/sa/frontend';
const BAR = 'spiffe://cluster.local/ns/bar/sa/backend';

function conn(
  principal: string | undefined,
  port = 8080,
  ip = '198.18.1.10',
  extra: Partial<L4Connection> = {},
): L4Connection {
  return {
    source: { ip, ...(principal === undefined ? {} : { principal }) },
    destination: { ip: '198.18.2.20', port },
    ...extra,
  };
}

interface Case {
  name: string;
  policies: L4Authorization[];
  conn: L4Connection;
  allow: boolean;
  policy?: string;
  reason?: RegExp;
}

const allowFoo = policy('allow-foo', { rules: [{ from: [{ source: { namespaces: ['foo'] } }] }] });
const denyPort22 = policy('deny-22', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['22'] } }] }] });
const allowNothing = policy('allow-nothing', {});

const cases: Case[] = [
  {
    name: 'no policies: allow',
    policies: [],
    conn: conn(FOO),
    allow: true,
    reason: /no ALLOW policy applies/,
  },
  {
    name: 'ALLOW matches namespace',
    policies: [allowFoo],
    conn: conn(FOO),
    allow: true,
    policy: 'app/allow-foo',
  },
  {
    name: 'ALLOW does not match: deny',
    policies: [allowFoo],
    conn: conn(BAR),
    allow: false,
    reason: /no ALLOW policy matched/,
  },
  { name: 'ALLOW by namespace needs an identity', policies: [allowFoo], conn: conn(undefined), allow: false },
  { name: 'empty ALLOW policy allows nothing', policies: [allowNothing], conn: conn(FOO), allow: false },
  {
    name: 'DENY beats ALLOW',
    policies: [allowFoo, denyPort22],
    conn: conn(FOO, 22),
    allow: false,
    policy: 'app/deny-22',
  },
  {
    name: 'DENY not matching leaves ALLOW to decide',
    policies: [allowFoo, denyPort22],
    conn: conn(FOO, 80),
    allow: true,
  },
  { name: 'DENY only: others allowed', policies: [denyPort22], conn: conn(BAR, 80), allow: true },
  {
    name: 'principal exact',
    policies: [
      policy('p', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/foo/sa/frontend'] } }] }] }),
    ],
    conn: conn(FOO),
    allow: true,
  },
  {
    name: 'principal suffix form',
    policies: [policy('p', { rules: [{ from: [{ source: { principals: ['*/sa/frontend'] } }] }] })],
    conn: conn(FOO),
    allow: true,
  },
  {
    name: 'principal prefix form does not match other namespace',
    policies: [policy('p', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/foo/*'] } }] }] })],
    conn: conn(BAR),
    allow: false,
  },
  {
    name: 'principals * requires an identity',
    policies: [policy('p', { rules: [{ from: [{ source: { principals: ['*'] } }] }] })],
    conn: conn(undefined),
    allow: false,
  },
  {
    name: 'notPrincipals excludes',
    policies: [
      policy('p', { rules: [{ from: [{ source: { notPrincipals: ['cluster.local/ns/bar/*'] } }] }] }),
    ],
    conn: conn(BAR),
    allow: false,
  },
  {
    name: 'notPrincipals lets plaintext through',
    policies: [
      policy('p', { rules: [{ from: [{ source: { notPrincipals: ['cluster.local/ns/bar/*'] } }] }] }),
    ],
    conn: conn(undefined),
    allow: true,
  },
  {
    name: 'serviceAccounts',
    policies: [policy('p', { rules: [{ from: [{ source: { serviceAccounts: ['bar/backend'] } }] }] })],
    conn: conn(BAR),
    allow: true,
  },
  {
    name: 'notServiceAccounts',
    policies: [policy('p', { rules: [{ from: [{ source: { notServiceAccounts: ['bar/backend'] } }] }] })],
    conn: conn(BAR),
    allow: false,
  },
  {
    name: 'notNamespaces',
    policies: [policy('p', { rules: [{ from: [{ source: { notNamespaces: ['foo'] } }] }] })],
    conn: conn(FOO),
    allow: false,
  },
  {
    name: 'ipBlocks CIDR',
    policies: [policy('p', { rules: [{ from: [{ source: { ipBlocks: ['198.18.1.0/24'] } }] }] })],
    conn: conn(undefined, 80, '198.18.1.77'),
    allow: true,
  },
  {
    name: 'ipBlocks with a v4-mapped v6 peer address',
    policies: [policy('p', { rules: [{ from: [{ source: { ipBlocks: ['198.18.1.0/24'] } }] }] })],
    conn: conn(undefined, 80, '::ffff:198.18.1.77'),
    allow: true,
  },
  {
    name: 'notIpBlocks',
    policies: [policy('p', { rules: [{ from: [{ source: { notIpBlocks: ['198.18.1.77'] } }] }] })],
    conn: conn(undefined, 80, '198.18.1.77'),
    allow: false,
  },
  {
    name: 'ports and notPorts',
    policies: [
      policy('p', { rules: [{ to: [{ operation: { ports: ['80', '8080'], notPorts: ['8080'] } }] }] }),
    ],
    conn: conn(FOO, 8080),
    allow: false,
  },
  {
    name: 'from AND to within one rule',
    policies: [
      policy('p', {
        rules: [{ from: [{ source: { namespaces: ['foo'] } }], to: [{ operation: { ports: ['80'] } }] }],
      }),
    ],
    conn: conn(FOO, 8080),
    allow: false,
  },
  {
    name: 'rules are ORed',
    policies: [
      policy('p', {
        rules: [
          { from: [{ source: { namespaces: ['bar'] } }] },
          { to: [{ operation: { ports: ['8080'] } }] },
        ],
      }),
    ],
    conn: conn(FOO, 8080),
    allow: true,
  },
  {
    name: 'when source.namespace and destination.port',
    policies: [
      policy('p', {
        rules: [
          {
            when: [
              { key: 'source.namespace', values: ['foo'] },
              { key: 'destination.port', notValues: ['22'] },
            ],
          },
        ],
      }),
    ],
    conn: conn(FOO, 8080),
    allow: true,
  },
  {
    name: 'when destination.ip',
    policies: [policy('p', { rules: [{ when: [{ key: 'destination.ip', values: ['198.18.3.0/24'] }] }] })],
    conn: conn(FOO),
    allow: false,
  },
  {
    name: 'when source.principal and source.ip',
    policies: [
      policy('p', {
        rules: [
          {
            when: [
              { key: 'source.principal', values: ['cluster.local/ns/foo/*'] },
              { key: 'source.ip', values: ['198.18.0.0/16'] },
            ],
          },
        ],
      }),
    ],
    conn: conn(FOO),
    allow: true,
  },
  {
    name: 'ALLOW with L7 fields matches nothing at L4 (stricter)',
    policies: [
      policy('l7', {
        rules: [{ from: [{ source: { namespaces: ['foo'] } }], to: [{ operation: { methods: ['GET'] } }] }],
      }),
    ],
    conn: conn(FOO),
    allow: false,
  },
  {
    name: 'ALLOW keeps its L4-only rules',
    policies: [
      policy('mixed', {
        rules: [
          { to: [{ operation: { methods: ['GET'] } }] },
          { from: [{ source: { namespaces: ['foo'] } }] },
        ],
      }),
    ],
    conn: conn(FOO),
    allow: true,
  },
  {
    name: 'DENY with L7 fields denies more at L4 (stricter)',
    policies: [
      policy('deny-l7', {
        action: 'DENY',
        rules: [{ from: [{ source: { namespaces: ['foo'] } }], to: [{ operation: { paths: ['/admin'] } }] }],
      }),
    ],
    conn: conn(FOO),
    allow: false,
    policy: 'app/deny-l7',
  },
  {
    name: 'DENY with an L7 when key drops only that condition',
    policies: [
      policy('deny-hdr', {
        action: 'DENY',
        rules: [
          {
            when: [
              { key: 'request.headers[x]', values: ['y'] },
              { key: 'source.namespace', values: ['bar'] },
            ],
          },
        ],
      }),
    ],
    conn: conn(FOO),
    allow: true,
  },
  {
    name: 'CUSTOM matching denies first',
    policies: [allowFoo, policy('ext', { action: 'CUSTOM', provider: { name: 'authz' }, rules: [{}] })],
    conn: conn(FOO),
    allow: false,
    reason: /CUSTOM/,
  },
  {
    name: 'AUDIT never decides',
    policies: [policy('audit', { action: 'AUDIT', rules: [{}] })],
    conn: conn(FOO),
    allow: true,
  },
  {
    name: 'STRICT denies plaintext even without policies',
    policies: [],
    conn: conn(undefined, 8080, '198.18.1.10', { mtlsMode: 'STRICT' }),
    allow: false,
    reason: /STRICT/,
  },
  {
    name: 'STRICT allows mTLS',
    policies: [],
    conn: conn(FOO, 8080, '198.18.1.10', { mtlsMode: 'STRICT' }),
    allow: true,
  },
  {
    name: 'PERMISSIVE allows plaintext',
    policies: [],
    conn: conn(undefined, 8080, '198.18.1.10', { mtlsMode: 'PERMISSIVE' }),
    allow: true,
  },
  {
    name: 'dry-run DENY does not deny',
    policies: [
      policy('dry', { action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } }),
    ],
    conn: conn(FOO),
    allow: true,
  },
];

describe('policy: evaluateL4', () => {
  for (const c of cases) {
    it(c.name, () => {
      const d = evaluateL4(c.policies, c.conn);
      assert.equal(d.allow, c.allow, d.reason);
      if (c.policy !== undefined) assert.equal(d.policy, c.policy);
      if (c.reason !== undefined) assert.match(d.reason, c.reason);
    });
  }

  it('reports matching AUDIT and dry-run policies', () => {
    const d = evaluateL4(
      [
        policy('audit', { action: 'AUDIT', rules: [{}] }),
        policy('dry', { action: 'DENY', rules: [{}] }, { annotations: { 'istio.io/dry-run': 'true' } }),
      ],
      conn(FOO),
    );
    assert.deepEqual(d.audit, ['app/audit']);
    assert.deepEqual(d.dryRun, ['app/dry']);
  });
});

describe('policy: toL4Authorization', () => {
  it('translates ports to numbers, drops L7 ALLOW rules, strips L7 from DENY rules', () => {
    assert.deepEqual(
      policy('a', {
        rules: [
          { to: [{ operation: { ports: ['80'], methods: ['GET'] } }] },
          { to: [{ operation: { ports: ['81'] } }] },
        ],
      }).rules,
      [{ to: [{ ports: [81] }] }],
    );
    assert.deepEqual(
      policy('d', {
        action: 'DENY',
        rules: [
          {
            from: [{ source: { requestPrincipals: ['*'], namespaces: ['x'] } }],
            to: [{ operation: { methods: ['GET'] } }],
          },
        ],
      }).rules,
      [{ from: [{ namespaces: ['x'] }], to: [{}] }],
    );
  });

  it('carries scope and dry-run', () => {
    const p = policy('g', { rules: [{}] }, { scope: 'global', annotations: { 'istio.io/dry-run': 'true' } });
    assert.deepEqual([p.scope, p.dryRun, p.action, p.namespace], ['global', true, 'ALLOW', 'app']);
  });
});

describe('policy: matching helpers', () => {
  const table: [string, string | undefined, boolean][] = [
    ['*', 'x', true],
    ['*', undefined, false],
    ['*', '', false],
    ['abc*', 'abcdef', true],
    ['*def', 'abcdef', true],
    ['abc', 'abcd', false],
  ];
  for (const [pattern, value, want] of table) {
    it(`stringMatches(${pattern}, ${value}) = ${want}`, () =>
      assert.equal(stringMatches(pattern, value), want));
  }
  it('ipInCidr for v4, v6 and bare addresses', () => {
    assert.equal(ipInCidr('198.18.2.3', '198.18.0.0/15'), true);
    assert.equal(ipInCidr('198.20.2.3', '198.18.0.0/15'), false);
    assert.equal(ipInCidr('2001:2::5', '2001:2::/48'), true);
    assert.equal(ipInCidr('198.18.0.1', '2001:2::/48'), false);
    assert.equal(ipInCidr('198.18.0.1', '198.18.0.1'), true);
    assert.equal(ipInCidr('not-ip', '198.18.0.0/15'), false);
  });
});
