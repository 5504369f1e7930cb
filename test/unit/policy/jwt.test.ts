// The JWT authenticator against Envoy's jwt_authn behaviour, as tables of cases: tokens are signed here
// with jose, keys are inline JWKS (no sockets), and each refusal is Envoy's status and exact body.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, generateSecret, type JWTPayload, SignJWT } from 'jose';
import type { RequestAuthenticationResource } from '../../../src/config/index.ts';
import { JwtAuthenticator, type JwtResult } from '../../../src/policy/jwt/index.ts';

const NOW = 1_700_000_000_000;
const NOW_S = NOW / 1000;
const ISSUER = 'https://issuer.example';
const ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
type Alg = (typeof ALGS)[number];

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const keys = new Map<Alg, PrivateKey>();
let otherRs256: PrivateKey;
let jwks = '';

before(async () => {
  const pub: object[] = [];
  for (const alg of ALGS) {
    const pair = await generateKeyPair(alg, { extractable: true });
    keys.set(alg, pair.privateKey);
    pub.push({ ...(await exportJWK(pair.publicKey)), kid: `k-${alg}`, alg, use: 'sig' });
  }
  otherRs256 = (await generateKeyPair('RS256')).privateKey;
  jwks = JSON.stringify({ keys: pub });
});

interface TokenSpec {
  alg?: Alg;
  kid?: string;
  claims?: JWTPayload;
  key?: PrivateKey;
}

async function sign(spec: TokenSpec = {}): Promise<string> {
  const alg = spec.alg ?? 'RS256';
  return new SignJWT({ iss: ISSUER, sub: 'alice', exp: NOW_S + 600, ...spec.claims })
    .setProtectedHeader({ alg, kid: spec.kid ?? `k-${alg}`, typ: 'JWT' })
    .sign(spec.key ?? keys.get(alg)!);
}

/** A token with any header and payload and a junk signature: for what must fail before any key is used. */
function forged(header: unknown, payload: unknown): string {
  const enc = (v: unknown) =>
    Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  return `${enc(header)}.${enc(payload)}.c2ln`;
}

function policy(rules: object[], name = 'jwt'): RequestAuthenticationResource {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name, namespace: 'app' },
    spec: { jwtRules: rules as never },
  };
}

const rule = (extra: object = {}) => ({ issuer: ISSUER, jwks, ...extra });
const bearer = (token: string) => ({ authorization: `Bearer ${token}`, host: 'web.app.svc:8080' });

function authenticator(opts: { maxTokenBytes?: number } = {}): JwtAuthenticator {
  const auth = new JwtAuthenticator({ now: () => NOW, ...opts });
  after(() => auth.close());
  return auth;
}

function assertDenied(result: JwtResult, body: string, status = 401): void {
  assert.equal(result.kind, 'denied', JSON.stringify(result));
  assert.ok(result.kind === 'denied');
  assert.equal(result.body, body);
  assert.equal(result.status, status);
}

describe('JWT: every supported algorithm verifies', () => {
  for (const alg of ALGS) {
    it(alg, async () => {
      const result = await authenticator().authenticate({ headers: bearer(await sign({ alg })), path: '/' }, [
        policy([rule()]),
      ]);
      assert.equal(result.kind, 'authenticated', JSON.stringify(result));
      assert.ok(result.kind === 'authenticated');
      assert.equal(result.auth.principal, `${ISSUER}/alice`);
      assert.equal(result.issuer, ISSUER);
    });
  }
});

describe('JWT: refusals carry Envoy status and body', () => {
  const cases: Array<{
    name: string;
    token: () => Promise<string> | string;
    body: string;
    status?: number;
    rule?: object;
  }> = [
    {
      name: 'expired beyond the 60 s skew',
      token: () => sign({ claims: { exp: NOW_S - 61 } }),
      body: 'Jwt is expired',
    },
    {
      name: 'not yet valid beyond the skew',
      token: () => sign({ claims: { nbf: NOW_S + 61 } }),
      body: 'Jwt not yet valid',
    },
    {
      name: 'another issuer',
      token: () => sign({ claims: { iss: 'https://evil.example' } }),
      body: 'Jwt issuer is not configured',
    },
    {
      name: 'no issuer',
      token: () => sign({ claims: { iss: undefined } }),
      body: 'Jwt issuer is not configured',
    },
    {
      name: 'audience not allowed (403, as Envoy)',
      token: () => sign({ claims: { aud: 'other' } }),
      body: 'Audiences in Jwt are not allowed',
      status: 403,
      rule: { audiences: ['web'] },
    },
    {
      name: 'no audience when audiences are required',
      token: () => sign(),
      body: 'Audiences in Jwt are not allowed',
      status: 403,
      rule: { audiences: ['web'] },
    },
    {
      name: 'signed by another key under a known kid',
      token: () => sign({ key: otherRs256 }),
      body: 'Jwt verification fails',
    },
    {
      name: 'unknown kid',
      token: () => sign({ kid: 'rotated-away' }),
      body: "Jwks doesn't have key to match kid or alg from Jwt",
    },
    {
      name: 'alg none',
      token: () => forged({ alg: 'none', typ: 'JWT' }, { iss: ISSUER, sub: 'alice' }).replace(/c2ln$/, ''),
      body: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
    },
    {
      name: 'alg none with a signature part',
      token: () => forged({ alg: 'none' }, { iss: ISSUER, sub: 'alice' }),
      body: 'Jwt header [alg] is not supported',
    },
    {
      name: 'HS256 against pinned asymmetric keys',
      token: async () =>
        new SignJWT({ iss: ISSUER, sub: 'alice' })
          .setProtectedHeader({ alg: 'HS256' })
          .sign(await generateSecret('HS256')),
      body: "Jwks doesn't have key to match kid or alg from Jwt",
    },
    {
      name: 'HS256 naming an RSA kid whose key pins no alg (key confusion)',
      token: async () =>
        new SignJWT({ iss: ISSUER, sub: 'alice' })
          .setProtectedHeader({ alg: 'HS256', kid: 'loose' })
          .sign(await generateSecret('HS256')),
      body: 'Jwt verification fails',
      rule: { jwks: 'loose' },
    },
    {
      name: 'one part',
      token: () => 'abc',
      body: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
    },
    {
      name: 'two parts',
      token: () => 'abc.def',
      body: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
    },
    {
      name: 'header not base64url',
      token: () => 'e30*.e30.c2ln',
      body: 'Jwt header is an invalid Base64url encoded',
    },
    { name: 'header not JSON', token: () => forged('{alg', {}), body: 'Jwt header is an invalid JSON' },
    {
      name: 'header without alg',
      token: () => forged({ typ: 'JWT' }, {}),
      body: 'Jwt header [alg] field is required and must be a string',
    },
    {
      name: 'kid not a string',
      token: () => forged({ alg: 'RS256', kid: 7 }, {}),
      body: 'Jwt header [kid] field is not a string',
    },
    {
      name: 'payload not JSON',
      token: () => forged({ alg: 'RS256' }, '[1'),
      body: 'Jwt payload is an invalid JSON',
    },
    {
      name: 'exp not a number',
      token: () => forged({ alg: 'RS256' }, { iss: ISSUER, exp: '1' }),
      body: 'Jwt payload [exp] field is not an integer',
    },
    {
      name: 'aud not strings',
      token: () => forged({ alg: 'RS256' }, { iss: ISSUER, aud: [1] }),
      body: 'Jwt payload [aud] field is not a string or string list',
    },
    {
      name: 'iss not a string',
      token: () => forged({ alg: 'RS256' }, { iss: 1 }),
      body: 'Jwt payload [iss] field is not a string',
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      let rules = rule(c.rule);
      if ((c.rule as { jwks?: string } | undefined)?.jwks === 'loose') {
        const { kid: _kid, alg: _alg, ...loose } = JSON.parse(jwks).keys[0];
        rules = rule({ jwks: JSON.stringify({ keys: [{ ...loose, kid: 'loose' }] }) });
      }
      const result = await authenticator().authenticate(
        { headers: bearer(await c.token()), path: '/orders?id=7' },
        [policy([rules])],
      );
      assertDenied(result, c.body, c.status);
      assert.ok(result.kind === 'denied');
      assert.deepEqual(result.headers, {
        'content-type': 'text/plain',
        'www-authenticate': 'Bearer realm="http://web.app.svc:8080/orders?id=7", error="invalid_token"',
      });
    });
  }

  it('times inside the 60 s skew are accepted', async () => {
    const auth = authenticator();
    for (const claims of [{ exp: NOW_S - 59 }, { nbf: NOW_S + 59 }]) {
      const result = await auth.authenticate({ headers: bearer(await sign({ claims })), path: '/' }, [
        policy([rule()]),
      ]);
      assert.equal(result.kind, 'authenticated', JSON.stringify(claims));
    }
  });

  it('an oversized token is refused unread', async () => {
    const token = await sign({ claims: { pad: 'x'.repeat(2000) } });
    const small = await authenticator({ maxTokenBytes: 1024 }).authenticate(
      { headers: bearer(token), path: '/' },
      [policy([rule()])],
    );
    assertDenied(small, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections');
    const huge = `${'a'.repeat(61 * 1024)}.b.c`;
    assertDenied(
      await authenticator().authenticate({ headers: bearer(huge), path: '/' }, [policy([rule()])]),
      'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
    );
  });

  it('a good token beside a bad one is refused', async () => {
    const headers = { 'x-a': await sign(), 'x-b': await sign({ claims: { exp: NOW_S - 3600 } }) };
    const result = await authenticator().authenticate({ headers, path: '/' }, [
      policy([rule({ fromHeaders: [{ name: 'x-a' }, { name: 'x-b' }] })]),
    ]);
    assertDenied(result, 'Jwt is expired');
  });
});

describe('JWT: where the token is found', () => {
  const cases: Array<{
    name: string;
    rule?: object;
    headers?: (t: string) => Record<string, string | string[]>;
    path?: (t: string) => string;
    kind: JwtResult['kind'];
    upstreamPath?: string;
    removed?: string[];
  }> = [
    { name: 'no token anywhere', kind: 'none', headers: () => ({}) },
    {
      name: 'Authorization: Bearer (default)',
      kind: 'authenticated',
      headers: bearer,
      removed: ['authorization'],
    },
    {
      name: 'lower-case "bearer" is not the prefix',
      kind: 'none',
      headers: (t) => ({ authorization: `bearer ${t}` }),
    },
    {
      name: 'Basic credentials are not a token',
      kind: 'none',
      headers: () => ({ authorization: 'Basic YTpi' }),
    },
    {
      name: 'access_token query parameter (default), removed upstream',
      kind: 'authenticated',
      path: (t) => `/a?x=1&access_token=${t}&y=2`,
      upstreamPath: '/a?x=1&y=2',
    },
    {
      name: 'custom header with prefix',
      rule: { fromHeaders: [{ name: 'X-Jwt-Assertion', prefix: 'Token ' }] },
      headers: (t) => ({ 'x-jwt-assertion': `Token ${t}` }),
      kind: 'authenticated',
      removed: ['x-jwt-assertion'],
    },
    {
      name: 'custom header ignores the default Authorization',
      rule: { fromHeaders: [{ name: 'x-jwt-assertion' }] },
      headers: bearer,
      kind: 'none',
    },
    {
      name: 'custom query parameter',
      rule: { fromParams: ['my_token'] },
      path: (t) => `/p?my_token=${t}`,
      kind: 'authenticated',
      upstreamPath: '/p',
    },
    {
      name: 'cookie (left in place, as Envoy does)',
      rule: { fromCookies: ['session'] },
      headers: (t) => ({ cookie: `theme=dark; session="${t}"` }),
      kind: 'authenticated',
      removed: [],
    },
    {
      name: 'forwardOriginalToken keeps the header',
      rule: { forwardOriginalToken: true },
      headers: bearer,
      kind: 'authenticated',
      removed: [],
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const token = await sign();
      const path = c.path?.(token) ?? '/';
      const result = await authenticator().authenticate({ headers: c.headers?.(token) ?? {}, path }, [
        policy([rule(c.rule)]),
      ]);
      assert.equal(result.kind, c.kind, JSON.stringify(result));
      if (result.kind === 'denied') return;
      if (c.removed) assert.deepEqual(result.headers.remove, c.removed);
      if (result.kind === 'authenticated') assert.equal(result.path, c.upstreamPath);
    });
  }

  it('a CORS preflight passes untouched, even with a bad token', async () => {
    const result = await authenticator().authenticate(
      {
        method: 'OPTIONS',
        headers: { ...bearer('bad'), origin: 'https://a.example', 'access-control-request-method': 'GET' },
        path: '/',
      },
      [policy([rule()])],
    );
    assert.equal(result.kind, 'none');
  });
});

describe('JWT: what a valid token gives', () => {
  it('principal, audiences, presenter and every claim, nested ones included', async () => {
    const claims = { aud: ['web', 'api'], azp: 'frontend', groups: ['a'], org: { team: { name: 'blue' } } };
    const result = await authenticator().authenticate(
      { headers: bearer(await sign({ claims })), path: '/' },
      [policy([rule({ audiences: ['https://web/'] })])],
    );
    assert.ok(result.kind === 'authenticated', JSON.stringify(result));
    assert.deepEqual(result.auth.audiences, ['web', 'api']);
    assert.equal(result.auth.presenter, 'frontend');
    assert.deepEqual((result.auth.claims.org as { team: object }).team, { name: 'blue' });
    assert.deepEqual(result.auth.claims.groups, ['a']);
    assert.equal(result.auth.claims.sub, 'alice');
  });

  it('a single-string aud is a one-element list', async () => {
    const result = await authenticator().authenticate(
      { headers: bearer(await sign({ claims: { aud: 'web' } })), path: '/' },
      [policy([rule()])],
    );
    assert.ok(result.kind === 'authenticated');
    assert.deepEqual(result.auth.audiences, ['web']);
    assert.equal(result.auth.presenter, undefined);
  });

  it('outputPayloadToHeader and outputClaimToHeaders, as Envoy writes them', async () => {
    const token = await sign({
      claims: { org: { team: 'blue' }, n: 42, f: 1.5, ok: true, list: ['x'], empty: '' },
    });
    const r = rule({
      outputPayloadToHeader: 'X-Jwt-Payload',
      outputClaimToHeaders: [
        { header: 'x-team', claim: 'org.team' },
        { header: 'x-n', claim: 'n' },
        { header: 'x-f', claim: 'f' },
        { header: 'x-ok', claim: 'ok' },
        { header: 'x-list', claim: 'list' },
        { header: 'x-empty', claim: 'empty' },
        { header: 'x-missing', claim: 'nope.deeper' },
      ],
    });
    const result = await authenticator().authenticate({ headers: bearer(token), path: '/' }, [policy([r])]);
    assert.ok(result.kind === 'authenticated', JSON.stringify(result));
    assert.deepEqual(result.headers.set, [
      ['x-jwt-payload', token.split('.')[1]],
      ['x-team', 'blue'],
      ['x-n', '42'],
      ['x-f', '1.500000'],
      ['x-ok', 'true'],
    ]);
    // Every output header is dropped from what the client sent, then set from the token.
    assert.deepEqual(result.headers.remove.sort(), [
      'authorization',
      'x-empty',
      'x-f',
      'x-jwt-payload',
      'x-list',
      'x-missing',
      'x-n',
      'x-ok',
      'x-team',
    ]);
  });

  it('a client cannot send its own claim headers: they are removed even with no token', async () => {
    const result = await authenticator().authenticate({ headers: { 'x-jwt-payload': 'forged' }, path: '/' }, [
      policy([rule({ outputPayloadToHeader: 'x-jwt-payload' })]),
    ]);
    assert.deepEqual(result, { kind: 'none', headers: { set: [], remove: ['x-jwt-payload'] } });
  });
});

describe('JWT: rules from several policies are merged', () => {
  const OTHER = 'https://other.example';
  const both = () => [policy([rule()], 'a'), policy([{ ...rule(), issuer: OTHER }], 'b')];

  it('a token of either issuer is accepted', async () => {
    const auth = authenticator();
    for (const iss of [ISSUER, OTHER]) {
      const result = await auth.authenticate(
        { headers: bearer(await sign({ claims: { iss } })), path: '/' },
        both(),
      );
      assert.ok(result.kind === 'authenticated', iss);
      assert.equal(result.issuer, iss);
      assert.equal(result.auth.principal, `${iss}/alice`);
    }
  });

  it("a shared location's failure is reported for the first issuer in order, as Istio's filter does", async () => {
    // Istio sorts rules by issuer; with both on the default locations, the first rule's verdict on the
    // expired token of the second issuer is "issuer not configured".
    const token = await sign({ claims: { iss: OTHER, exp: NOW_S - 3600 } });
    assertDenied(
      await authenticator().authenticate({ headers: bearer(token), path: '/' }, both()),
      'Jwt issuer is not configured',
    );
  });

  it('with separate locations each rule reports its own failure', async () => {
    const token = await sign({ claims: { iss: OTHER, exp: NOW_S - 3600 } });
    const policies = [
      policy([rule()]),
      policy([{ ...rule(), issuer: OTHER, fromHeaders: [{ name: 'x-other' }] }], 'b'),
    ];
    assertDenied(
      await authenticator().authenticate({ headers: { 'x-other': token }, path: '/' }, policies),
      'Jwt is expired',
    );
  });

  it('no policies: nothing to do', async () => {
    assert.deepEqual(await authenticator().authenticate({ headers: bearer('x'), path: '/' }, []), {
      kind: 'none',
      headers: { set: [], remove: [] },
    });
  });
});

describe('JWT: verified tokens are remembered, their claims never', () => {
  it('a token verified once is still refused once it expires, or under another issuer or key set', async () => {
    let now = NOW;
    const auth = new JwtAuthenticator({ now: () => now });
    after(() => auth.close());
    const token = await sign({ claims: { exp: NOW_S + 60 } });
    const req = { headers: bearer(token), path: '/' };
    assert.equal((await auth.authenticate(req, [policy([rule()])])).kind, 'authenticated');
    assert.equal((await auth.authenticate(req, [policy([rule()])])).kind, 'authenticated');
    now = NOW + 200_000; // past exp and the 60 s skew
    assertDenied(await auth.authenticate(req, [policy([rule()])]), 'Jwt is expired');
    now = NOW;
    assertDenied(
      await auth.authenticate(req, [policy([{ ...rule(), issuer: 'https://other.example' }])]),
      'Jwt issuer is not configured',
    );
    // Another key set (a rotation) that lacks the signing key: the remembered verification does not carry over.
    const other = await exportJWK((await generateKeyPair('RS256')).publicKey);
    const rotated = JSON.stringify({ keys: [{ ...other, kid: 'k-RS256', alg: 'RS256', use: 'sig' }] });
    assertDenied(await auth.authenticate(req, [policy([rule({ jwks: rotated })])]), 'Jwt verification fails');
  });
});
