// RequestAuthentication validation: Istio's documented examples are accepted as written, and each
// refusal names the field path that is wrong.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { jwksProblem, kindByCliName, validateResource } from '../../../src/config/index.ts';
import { type Case, res, runCase } from './helpers.ts';

const ra = (spec: unknown) => res('security.istio.io/v1', 'RequestAuthentication', 'ra', spec);
const rule = (extra: Record<string, unknown> = {}) => ra({ jwtRules: [{ issuer: 'issuer-foo', ...extra }] });

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
const inlineJwks = JSON.stringify({ keys: [publicJwk, ec.publicKey.export({ format: 'jwk' })] });

const cases: Case[] = [
  // Istio's reference examples (security/v1/request_authentication.proto), as written.
  {
    name: 'Istio example: require JWT for app httpbin',
    doc: {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'httpbin', namespace: 'foo' },
      spec: {
        selector: { matchLabels: { app: 'httpbin' } },
        jwtRules: [{ issuer: 'issuer-foo', jwksUri: 'https://example.com/.well-known/jwks.json' }],
      },
    },
    paths: [],
  },
  {
    name: 'Istio example: root-namespace policy, v1beta1',
    doc: {
      apiVersion: 'security.istio.io/v1beta1',
      kind: 'RequestAuthentication',
      metadata: { name: 'req-authn-for-all', namespace: 'istio-system' },
      spec: { jwtRules: [{ issuer: 'issuer-foo', jwksUri: 'https://example.com/.well-known/jwks.json' }] },
    },
    paths: [],
  },
  {
    name: 'Istio example: two issuers with implicit keys',
    doc: ra({
      selector: { matchLabels: { app: 'httpbin' } },
      jwtRules: [{ issuer: 'issuer-foo' }, { issuer: 'issuer-bar' }],
    }),
    paths: [],
  },
  {
    name: "Istio's full valid test resource (the fields Ambit knows)",
    doc: ra({
      targetRefs: [{ group: '', kind: 'Service', name: 'foo' }],
      jwtRules: [
        {
          issuer: 'example.com',
          jwksUri: 'https://example.com/.well-known/jwks.json',
          forwardOriginalToken: true,
          fromCookies: ['foo'],
          fromHeaders: [{ name: 'foo', prefix: 'baz' }],
          outputClaimToHeaders: [{ claim: 'abc', header: 'def' }],
          timeout: '5s',
          outputPayloadToHeader: 'header',
        },
        { issuer: 'example.org', jwksUri: 'https://example.org/.well-known/jwks.json' },
      ],
    }),
    paths: [],
  },
  {
    name: 'JWTRule doc example: custom header with prefix, params, claims',
    doc: rule({
      audiences: ['bookstore_android.apps.example.com', 'bookstore_web.apps.example.com'],
      fromHeaders: [{ name: 'x-jwt-assertion', prefix: 'Bearer ' }],
      fromParams: ['my_token'],
      outputClaimToHeaders: [
        { header: 'x-my-company-jwt-group', claim: 'my-group' },
        { header: 'x-jwt-claim-group', claim: 'nested.key.group' },
      ],
    }),
    paths: [],
  },
  { name: 'inline jwks', doc: rule({ jwks: inlineJwks }), paths: [] },
  {
    name: 'jwks and jwksUri together (Istio allows it; the inline keys win)',
    doc: rule({ jwks: inlineJwks, jwksUri: 'http://keys.example:8080/jwks' }),
    paths: [],
  },
  {
    name: 'Gateway targetRef',
    doc: ra({ targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' } }),
    paths: [],
  },
  {
    name: 'Service with group "core"',
    doc: ra({ targetRefs: [{ group: 'core', kind: 'Service', name: 'web' }] }),
    paths: [],
  },
  { name: 'empty spec', doc: ra({}), paths: [] },

  // Refusals, each with its path.
  {
    name: 'issuer missing',
    doc: ra({ jwtRules: [{ jwksUri: 'https://a/jwks' }] }),
    paths: ['spec.jwtRules[0].issuer'],
  },
  {
    name: 'issuer empty',
    doc: ra({ jwtRules: [{ issuer: '' }] }),
    paths: ['spec.jwtRules[0].issuer'],
    messages: { 'spec.jwtRules[0].issuer': 'issuer must be set' },
  },
  {
    name: 'duplicate issuer across rules',
    doc: ra({ jwtRules: [{ issuer: 'a' }, { issuer: 'b' }, { issuer: 'a' }] }),
    paths: ['spec.jwtRules[2].issuer'],
    messages: { 'spec.jwtRules[2].issuer': 'jwtRules[0]' },
  },
  {
    name: 'empty audience',
    doc: rule({ audiences: ['ok', ''] }),
    paths: ['spec.jwtRules[0].audiences[1]'],
    messages: { 'spec.jwtRules[0].audiences[1]': 'audience must be non-empty' },
  },
  {
    name: 'jwksUri with another scheme',
    doc: rule({ jwksUri: 'ftp://example.com/jwks' }),
    paths: ['spec.jwtRules[0].jwksUri'],
  },
  {
    name: 'jwksUri not a URL',
    doc: rule({ jwksUri: 'example.com/jwks' }),
    paths: ['spec.jwtRules[0].jwksUri'],
  },
  {
    name: 'jwks not JSON',
    doc: rule({ jwks: '{keys: [' }),
    paths: ['spec.jwtRules[0].jwks'],
    messages: { 'spec.jwtRules[0].jwks': 'not valid JSON' },
  },
  {
    name: 'jwks without keys',
    doc: rule({ jwks: '{"keys":[]}' }),
    paths: ['spec.jwtRules[0].jwks'],
    messages: { 'spec.jwtRules[0].jwks': 'at least one key' },
  },
  {
    name: 'jwks with a broken key',
    doc: rule({ jwks: JSON.stringify({ keys: [{ kty: 'RSA', n: 'AQAB' }] }) }),
    paths: ['spec.jwtRules[0].jwks'],
    messages: { 'spec.jwtRules[0].jwks': 'keys[0]' },
  },
  {
    name: 'jwks with only an HMAC key',
    doc: rule({ jwks: JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }) }),
    paths: ['spec.jwtRules[0].jwks'],
    messages: { 'spec.jwtRules[0].jwks': 'no public key' },
  },
  {
    name: 'jwks with a private key',
    doc: rule({ jwks: JSON.stringify({ keys: [ec.privateKey.export({ format: 'jwk' })] }) }),
    paths: ['spec.jwtRules[0].jwks'],
    messages: { 'spec.jwtRules[0].jwks': 'private key' },
  },
  {
    name: 'fromHeaders name missing and bad',
    doc: rule({ fromHeaders: [{ prefix: 'Bearer ' }, { name: 'x bad' }] }),
    paths: ['spec.jwtRules[0].fromHeaders[0].name', 'spec.jwtRules[0].fromHeaders[1].name'],
  },
  {
    name: 'fromHeaders given as plain strings',
    doc: rule({ fromHeaders: ['x-goog-iap-jwt-assertion'] }),
    paths: ['spec.jwtRules[0].fromHeaders[0]'],
  },
  { name: 'empty param', doc: rule({ fromParams: [''] }), paths: ['spec.jwtRules[0].fromParams[0]'] },
  { name: 'empty cookie', doc: rule({ fromCookies: [''] }), paths: ['spec.jwtRules[0].fromCookies[0]'] },
  {
    name: 'bad outputPayloadToHeader',
    doc: rule({ outputPayloadToHeader: 'x:payload' }),
    paths: ['spec.jwtRules[0].outputPayloadToHeader'],
  },
  {
    name: 'outputClaimToHeaders: bad header, missing claim',
    doc: rule({ outputClaimToHeaders: [{ header: 'x_group', claim: 'group' }, { header: 'x-sub' }] }),
    paths: [
      'spec.jwtRules[0].outputClaimToHeaders[0].header',
      'spec.jwtRules[0].outputClaimToHeaders[1].claim',
    ],
  },
  {
    name: 'outputClaimToHeaders: one header twice (any case)',
    doc: rule({
      outputClaimToHeaders: [
        { header: 'x-a', claim: 'a' },
        { header: 'X-A', claim: 'b' },
      ],
    }),
    paths: ['spec.jwtRules[0].outputClaimToHeaders[1].header'],
    messages: { 'spec.jwtRules[0].outputClaimToHeaders[1].header': 'must be unique' },
  },
  { name: 'bad timeout', doc: rule({ timeout: '5' }), paths: ['spec.jwtRules[0].timeout'] },
  { name: 'zero timeout', doc: rule({ timeout: '0s' }), paths: ['spec.jwtRules[0].timeout'] },
  {
    name: 'forwardOriginalToken not a boolean',
    doc: rule({ forwardOriginalToken: 'yes' }),
    paths: ['spec.jwtRules[0].forwardOriginalToken'],
  },
  {
    name: 'unknown rule field',
    doc: rule({ jwks_uri: 'https://a/jwks' }),
    paths: ['spec.jwtRules[0].jwks_uri'],
    messages: { 'spec.jwtRules[0].jwks_uri': 'did you mean "jwksUri"' },
  },
  {
    name: 'selector with targetRefs',
    doc: ra({ selector: { matchLabels: { a: 'b' } }, targetRefs: [{ kind: 'Service', name: 'foo' }] }),
    paths: ['spec.selector'],
  },
  {
    name: 'targetRef with targetRefs',
    doc: ra({ targetRef: { kind: 'Service', name: 'foo' }, targetRefs: [{ kind: 'Service', name: 'foo' }] }),
    paths: ['spec.targetRef'],
  },
  {
    name: 'targetRefs kind not Service or Gateway',
    doc: ra({
      targetRefs: [
        { kind: 'Service', name: 'a' },
        { group: 'networking.istio.io', kind: 'ServiceEntry', name: 'b' },
      ],
    }),
    paths: ['spec.targetRefs[1].kind'],
    messages: { 'spec.targetRefs[1].kind': 'Service or Gateway' },
  },
  {
    name: 'Gateway in the core group',
    doc: ra({ targetRefs: [{ group: '', kind: 'Gateway', name: 'waypoint' }] }),
    paths: ['spec.targetRefs[0].group'],
  },
  {
    name: 'targetRef in another namespace',
    doc: ra({ targetRef: { kind: 'Service', name: 'foo', namespace: 'bar' } }),
    paths: ['spec.targetRef.namespace'],
  },
];

describe('RequestAuthentication validation', () => {
  for (const c of cases) {
    it(c.name, () => {
      runCase(c);
    });
  }

  it('is registered under its plural and short names, and stored as v1', () => {
    for (const name of ['RequestAuthentication', 'requestauthentications', 'ra', 'requestauthentication']) {
      assert.equal(kindByCliName(name)?.kind, 'RequestAuthentication', name);
    }
    const result = validateResource({
      ...(rule() as object),
      apiVersion: 'security.istio.io/v1beta1',
    });
    assert.ok(result.ok);
    assert.equal(result.resource.apiVersion, 'security.istio.io/v1');
    assert.equal(result.resource.kind, 'RequestAuthentication');
  });

  it('jwksProblem accepts a usable set and explains the rest', () => {
    assert.equal(jwksProblem(inlineJwks), undefined);
    assert.match(jwksProblem('[]') ?? '', /"keys" array/);
    assert.match(jwksProblem('{"keys":[7]}') ?? '', /keys\[0\] must be an object/);
  });
});
