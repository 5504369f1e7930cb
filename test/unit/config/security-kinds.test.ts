import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateResource } from '../../../src/config/index.ts';
import { type Case, res, runCase } from './helpers.ts';

const pa = (spec: unknown) => res('security.istio.io/v1', 'PeerAuthentication', 'pa', spec);
const ap = (spec: unknown) => res('security.istio.io/v1', 'AuthorizationPolicy', 'ap', spec);
const from = (source: unknown) => ap({ rules: [{ from: [{ source }] }] });
const to = (operation: unknown) => ap({ rules: [{ to: [{ operation }] }] });
const when = (...conditions: unknown[]) => ap({ rules: [{ when: conditions }] });

const cases: Case[] = [
  { name: 'PA namespace STRICT', doc: pa({ mtls: { mode: 'STRICT' } }), paths: [] },
  {
    name: 'PA selector with portLevelMtls',
    doc: pa({
      selector: { matchLabels: { app: 'db' } },
      mtls: { mode: 'STRICT' },
      portLevelMtls: { '5432': { mode: 'PERMISSIVE' } },
    }),
    paths: [],
  },
  {
    name: 'PA v1beta1 accepted',
    doc: { ...(pa({}) as object), apiVersion: 'security.istio.io/v1beta1' },
    paths: [],
  },
  { name: 'PA DISABLE accepted', doc: pa({ mtls: { mode: 'DISABLE' } }), paths: [] },
  {
    name: 'PA bad mode',
    doc: pa({ mtls: { mode: 'strict' } }),
    paths: ['spec.mtls.mode'],
    messages: { 'spec.mtls.mode': '"STRICT"' },
  },
  {
    name: 'PA portLevelMtls without selector',
    doc: pa({ portLevelMtls: { '80': { mode: 'STRICT' } } }),
    paths: ['spec.portLevelMtls'],
    messages: { 'spec.portLevelMtls': 'selector' },
  },
  {
    name: 'PA portLevelMtls key not a port',
    doc: pa({ selector: { matchLabels: { app: 'db' } }, portLevelMtls: { http: { mode: 'STRICT' } } }),
    paths: ['spec.portLevelMtls.http'],
  },
  {
    name: 'PA selector without matchLabels wrapper',
    doc: pa({ selector: { app: 'db' } }),
    paths: ['spec.selector.app'],
  },
  {
    name: 'PA unknown spec field',
    doc: pa({ mTLS: { mode: 'STRICT' } }),
    paths: ['spec.mTLS'],
    messages: { 'spec.mTLS': 'did you mean "mtls"' },
  },
  { name: 'AP allow-nothing (empty spec)', doc: ap({}), paths: [] },
  {
    name: 'AP every L4 source field',
    doc: ap({
      selector: { matchLabels: { app: 'db' } },
      action: 'ALLOW',
      rules: [
        {
          from: [
            {
              source: {
                principals: ['cluster.local/ns/a/sa/b', '*', '*/sa/b', 'cluster.local/ns/a/*'],
                notPrincipals: ['x'],
              },
            },
          ],
        },
        {
          from: [
            {
              source: {
                namespaces: ['a', 'prod-*'],
                notNamespaces: ['b'],
                ipBlocks: ['198.18.0.0/15', '198.18.1.5'],
                notIpBlocks: ['2001:2::/48'],
              },
            },
          ],
        },
        { from: [{ source: { serviceAccounts: ['a/b'], notServiceAccounts: ['a/c'] } }] },
        { to: [{ operation: { ports: ['80', '8080'], notPorts: ['9090'] } }] },
        {
          when: [
            { key: 'source.ip', values: ['198.18.0.0/15'] },
            { key: 'destination.port', notValues: ['22'] },
          ],
        },
        {},
      ],
    }),
    paths: [],
  },
  {
    name: 'AP L7 fields on a waypoint',
    doc: ap({
      targetRefs: [{ kind: 'Service', group: '', name: 'web' }],
      rules: [
        {
          from: [{ source: { requestPrincipals: ['issuer/*'], remoteIpBlocks: ['1.2.3.0/24'] } }],
          to: [{ operation: { methods: ['GET'], paths: ['/api/*'], hosts: ['web.app.svc.cluster.local'] } }],
          when: [
            { key: 'request.headers[x-user]', values: ['alice'] },
            { key: 'request.auth.claims[groups]', values: ['admin'] },
          ],
        },
      ],
    }),
    paths: [],
  },
  {
    name: 'AP CUSTOM with provider',
    doc: ap({ action: 'CUSTOM', provider: { name: 'ext-authz' }, rules: [{}] }),
    paths: [],
  },
  {
    name: 'AP bad principal (middle star), exact path',
    doc: ap({
      rules: [{ from: [{ source: { principals: ['cluster.local/ns/a/sa/b', 'cluster.local/*/sa/b'] } }] }],
    }),
    paths: ['spec.rules[0].from[0].source.principals[1]'],
    messages: { 'spec.rules[0].from[0].source.principals[1]': '"*" only at one end' },
  },
  {
    name: 'AP principal with spiffe:// prefix',
    doc: from({ principals: ['spiffe://cluster.local/ns/a/sa/b'] }),
    paths: ['spec.rules[0].from[0].source.principals[0]'],
    messages: { 'spec.rules[0].from[0].source.principals[0]': 'without "spiffe://"' },
  },
  {
    name: 'AP misspelled source field',
    doc: from({ principal: ['x'] }),
    paths: ['spec.rules[0].from[0].source.principal', 'spec.rules[0].from[0].source'],
    messages: { 'spec.rules[0].from[0].source.principal': 'did you mean "principals"' },
  },
  {
    name: 'AP empty source',
    doc: from({}),
    paths: ['spec.rules[0].from[0].source'],
    messages: { 'spec.rules[0].from[0].source': 'at least one field' },
  },
  {
    name: 'AP bad ipBlock',
    doc: from({ ipBlocks: ['198.18.0.0/33'] }),
    paths: ['spec.rules[0].from[0].source.ipBlocks[0]'],
  },
  {
    name: 'AP bad notIpBlock',
    doc: from({ notIpBlocks: ['not-an-ip'] }),
    paths: ['spec.rules[0].from[0].source.notIpBlocks[0]'],
  },
  {
    name: 'AP bad serviceAccount',
    doc: from({ serviceAccounts: ['just-sa'] }),
    paths: ['spec.rules[0].from[0].source.serviceAccounts[0]'],
  },
  {
    name: 'AP serviceAccounts with principals',
    doc: from({ serviceAccounts: ['a/b'], principals: ['cluster.local/ns/a/sa/b'] }),
    paths: ['spec.rules[0].from[0].source.serviceAccounts'],
  },
  { name: 'AP port as number', doc: to({ ports: [80] }), paths: ['spec.rules[0].to[0].operation.ports[0]'] },
  {
    name: 'AP port out of range',
    doc: to({ notPorts: ['65536'] }),
    paths: ['spec.rules[0].to[0].operation.notPorts[0]'],
  },
  { name: 'AP empty operation', doc: to({}), paths: ['spec.rules[0].to[0].operation'] },
  { name: 'AP empty from list', doc: ap({ rules: [{ from: [] }] }), paths: ['spec.rules[0].from'] },
  {
    name: 'AP unknown when key',
    doc: when({ key: 'source.user', values: ['x'] }),
    paths: ['spec.rules[0].when[0].key'],
  },
  {
    name: 'AP when without values',
    doc: when({ key: 'source.ip' }),
    paths: ['spec.rules[0].when[0].values'],
  },
  {
    name: 'AP when source.ip not a CIDR',
    doc: when({ key: 'source.ip', values: ['198.18.0.0/15', 'x'] }),
    paths: ['spec.rules[0].when[0].values[1]'],
  },
  {
    name: 'AP when destination.port not a port',
    doc: when({ key: 'destination.port', notValues: ['http'] }),
    paths: ['spec.rules[0].when[0].notValues[0]'],
  },
  { name: 'AP bad action', doc: ap({ action: 'REJECT' }), paths: ['spec.action'] },
  { name: 'AP CUSTOM without provider', doc: ap({ action: 'CUSTOM' }), paths: ['spec.provider'] },
  {
    name: 'AP provider without CUSTOM',
    doc: ap({ action: 'DENY', provider: { name: 'x' } }),
    paths: ['spec.provider'],
  },
  {
    name: 'AP selector with targetRefs',
    doc: ap({ selector: { matchLabels: { app: 'x' } }, targetRefs: [{ kind: 'Service', name: 'web' }] }),
    paths: ['spec.selector'],
  },
  {
    name: 'AP targetRefs bad kind',
    doc: ap({ targetRefs: [{ kind: 'Pod', name: 'web' }] }),
    paths: ['spec.targetRefs[0].kind'],
  },
  {
    name: 'AP targetRefs missing name',
    doc: ap({ targetRefs: [{ kind: 'Service' }] }),
    paths: ['spec.targetRefs[0].name'],
  },
  {
    name: 'AP misspelled rules',
    doc: ap({ rule: [] }),
    paths: ['spec.rule'],
    messages: { 'spec.rule': 'did you mean "rules"' },
  },
  {
    name: 'AP several errors reported together',
    doc: ap({
      action: 'allow',
      rules: [
        { from: [{ source: { namespaces: ['a'], ipBlocks: ['x'] } }], to: [{ operation: { ports: ['0'] } }] },
      ],
    }),
    paths: [
      'spec.action',
      'spec.rules[0].from[0].source.ipBlocks[0]',
      'spec.rules[0].to[0].operation.ports[0]',
    ],
  },
];

describe('config: PeerAuthentication, AuthorizationPolicy', () => {
  for (const c of cases) {
    it(c.name, () => {
      runCase(c);
    });
  }
});

describe('config: AuthorizationPolicy status conditions', () => {
  const conditionOf = (doc: unknown) => {
    const r = validateResource(doc);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    assert.equal(r.conditions.length, 1);
    return r.conditions[0]!;
  };

  it('a pure L4 policy is Accepted', () => {
    const c = conditionOf(from({ namespaces: ['a'] }));
    assert.deepEqual([c.type, c.status, c.reason], ['Accepted', 'True', 'Accepted']);
  });

  it('an ALLOW policy with L7 fields landing on a ztunnel is accepted as stricter, saying so', () => {
    const c = conditionOf(
      ap({
        rules: [{ from: [{ source: { namespaces: ['a'] } }] }, { to: [{ operation: { methods: ['GET'] } }] }],
      }),
    );
    assert.deepEqual([c.type, c.status, c.reason], ['Accepted', 'True', 'UnsupportedValue']);
    assert.match(c.message, /methods/);
    assert.match(c.message, /rules\[1\] match nothing/);
    assert.match(c.message, /stricter/);
  });

  it('a DENY policy with L7 fields is stricter too', () => {
    const c = conditionOf(
      ap({ action: 'DENY', rules: [{ when: [{ key: 'request.headers[x]', values: ['y'] }] }] }),
    );
    assert.equal(c.reason, 'UnsupportedValue');
    assert.match(c.message, /when request\.headers\[x\]/);
    assert.match(c.message, /deny more than written/);
  });

  it('the same L7 fields with targetRefs are valid, enforced by waypoints', () => {
    const c = conditionOf(
      ap({
        targetRefs: [{ kind: 'Gateway', name: 'wp' }],
        rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
      }),
    );
    assert.equal(c.reason, 'Accepted');
    assert.equal(c.status, 'True');
  });

  it('AUDIT and CUSTOM at a ztunnel are flagged', () => {
    assert.equal(conditionOf(ap({ action: 'AUDIT', rules: [{}] })).reason, 'UnsupportedValue');
    const custom = conditionOf(ap({ action: 'CUSTOM', provider: { name: 'x' }, rules: [{}] }));
    assert.equal(custom.reason, 'UnsupportedValue');
    assert.match(custom.message, /denied/);
  });
});
