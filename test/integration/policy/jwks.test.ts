// jwksUri keys over real HTTP on 127.0.0.1: fetched once and cached, refreshed on a timer, refetched when
// a token names a kid the set lacks (rate-limited), kept when a later fetch fails, and before any
// successful fetch a token is refused with Envoy's `Jwks remote fetch is failed`.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import type { RequestAuthenticationResource } from '../../../src/config/index.ts';
import { FAILED_REFETCH_MS, JwtAuthenticator, KID_REFETCH_MS } from '../../../src/policy/jwt/index.ts';

const ISSUER = 'https://issuer.example';
const T0 = 1_700_000_000_000;

interface Signer {
  kid: string;
  jwk: JWK;
  sign: () => Promise<string>;
}

async function signer(kid: string): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  return {
    kid,
    jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' },
    sign: () =>
      new SignJWT({ iss: ISSUER, sub: 'bob', exp: T0 / 1000 + 3600 })
        .setProtectedHeader({ alg: 'ES256', kid })
        .sign(privateKey),
  };
}

/** A JWKS server: serves `keys`, or answers `failWith`, or never answers when `hang`; counts requests. */
async function jwksServer(t: TestContext) {
  const state = { keys: [] as JWK[], failWith: 0, hang: false, hits: 0 };
  const hit = new EventTarget();
  const server = http.createServer((_req, res) => {
    state.hits++;
    hit.dispatchEvent(new Event('hit'));
    if (state.hang) return;
    if (state.failWith) {
      res.writeHead(state.failWith).end('no');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  return { state, uri: `http://127.0.0.1:${port}/jwks`, nextHit: () => once(hit, 'hit') };
}

function policy(uri: string, extra: object = {}): RequestAuthenticationResource {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name: 'jwt', namespace: 'app' },
    spec: { jwtRules: [{ issuer: ISSUER, jwksUri: uri, ...extra }] },
  };
}

function setup(t: TestContext, opts: { refreshMs?: number } = {}) {
  const clock = { now: T0 };
  const auth = new JwtAuthenticator({ now: () => clock.now, ...opts });
  t.after(() => auth.close());
  return { clock, auth };
}

async function kindOf(
  auth: JwtAuthenticator,
  token: string,
  p: RequestAuthenticationResource,
): Promise<string> {
  const result = await auth.authenticate({ headers: { authorization: `Bearer ${token}` }, path: '/' }, [p]);
  return result.kind === 'denied' ? `denied: ${result.body}` : result.kind;
}

describe('JWKS from a jwksUri', () => {
  test('fetched on first use, then cached; concurrent requests share one fetch', async (t) => {
    const jwks = await jwksServer(t);
    const k1 = await signer('k1');
    jwks.state.keys = [k1.jwk];
    const { auth } = setup(t);
    const p = policy(jwks.uri);
    const token = await k1.sign();
    const first = await Promise.all([kindOf(auth, token, p), kindOf(auth, token, p), kindOf(auth, token, p)]);
    assert.deepEqual(first, ['authenticated', 'authenticated', 'authenticated']);
    assert.equal(await kindOf(auth, token, p), 'authenticated');
    assert.equal(jwks.state.hits, 1);
    const [status] = auth.jwksStatus();
    assert.equal(status?.uri, jwks.uri);
    assert.equal(status?.ok, true);
    assert.equal(status?.keys, 1);
    assert.equal(status?.fetchedAt, new Date(T0).toISOString());
  });

  test('key rotation is picked up by an unknown-kid refetch, at most once per interval', async (t) => {
    const jwks = await jwksServer(t);
    const [k1, k2, k3] = await Promise.all([signer('k1'), signer('k2'), signer('k3')]);
    jwks.state.keys = [k1.jwk];
    const { auth, clock } = setup(t);
    const p = policy(jwks.uri);
    assert.equal(await kindOf(auth, await k1.sign(), p), 'authenticated');

    jwks.state.keys = [k1.jwk, k2.jwk];
    assert.equal(await kindOf(auth, await k2.sign(), p), 'authenticated');
    assert.equal(jwks.state.hits, 2);

    // Another unknown kid straight away does not refetch: random kids cannot make us hammer the issuer.
    jwks.state.keys = [k1.jwk, k2.jwk, k3.jwk];
    assert.equal(
      await kindOf(auth, await k3.sign(), p),
      "denied: Jwks doesn't have key to match kid or alg from Jwt",
    );
    assert.equal(jwks.state.hits, 2);
    clock.now += KID_REFETCH_MS;
    assert.equal(await kindOf(auth, await k3.sign(), p), 'authenticated');
    assert.equal(jwks.state.hits, 3);
  });

  test('a failed refetch keeps the last good keys, and the status says what failed', async (t) => {
    const jwks = await jwksServer(t);
    const [k1, k2] = await Promise.all([signer('k1'), signer('k2')]);
    jwks.state.keys = [k1.jwk];
    const { auth } = setup(t);
    const p = policy(jwks.uri);
    assert.equal(await kindOf(auth, await k1.sign(), p), 'authenticated');

    jwks.state.failWith = 503;
    assert.equal(
      await kindOf(auth, await k2.sign(), p),
      "denied: Jwks doesn't have key to match kid or alg from Jwt",
    );
    assert.equal(jwks.state.hits, 2);
    assert.equal(await kindOf(auth, await k1.sign(), p), 'authenticated');
    const [status] = auth.jwksStatus();
    assert.equal(status?.ok, false);
    assert.equal(status?.keys, 1);
    assert.match(status?.error ?? '', /HTTP 503/);
    assert.match(status?.error ?? '', /AMBIT_ERR_POLICY_JWKS_FETCH/);
  });

  test('keys that stop parsing are a failed fetch too: the good ones stay', async (t) => {
    const jwks = await jwksServer(t);
    const [k1, k2] = await Promise.all([signer('k1'), signer('k2')]);
    jwks.state.keys = [k1.jwk];
    const { auth } = setup(t);
    const p = policy(jwks.uri);
    assert.equal(await kindOf(auth, await k1.sign(), p), 'authenticated');
    jwks.state.keys = [{ kty: 'oct', k: 'c2VjcmV0', kid: 'k2' }];
    assert.equal(
      await kindOf(auth, await k2.sign(), p),
      "denied: Jwks doesn't have key to match kid or alg from Jwt",
    );
    assert.equal(await kindOf(auth, await k1.sign(), p), 'authenticated');
    assert.match(auth.jwksStatus()[0]?.error ?? '', /AMBIT_ERR_POLICY_JWKS_INVALID/);
  });

  test('never fetched: 401 "Jwks remote fetch is failed", retried only after a pause', async (t) => {
    const jwks = await jwksServer(t);
    jwks.state.failWith = 500;
    const k1 = await signer('k1');
    const { auth, clock } = setup(t);
    const p = policy(jwks.uri);
    const result = await auth.authenticate(
      { headers: { authorization: `Bearer ${await k1.sign()}`, host: 'web' }, path: '/x' },
      [p],
    );
    assert.deepEqual(result, {
      kind: 'denied',
      status: 401,
      body: 'Jwks remote fetch is failed',
      headers: {
        'content-type': 'text/plain',
        'www-authenticate': 'Bearer realm="http://web/x", error="invalid_token"',
      },
    });
    assert.equal(await kindOf(auth, await k1.sign(), p), 'denied: Jwks remote fetch is failed');
    assert.equal(jwks.state.hits, 1);
    const [status] = auth.jwksStatus();
    assert.deepEqual(
      { uri: status?.uri, ok: status?.ok, keys: status?.keys },
      { uri: jwks.uri, ok: false, keys: undefined },
    );
    assert.match(status?.error ?? '', /HTTP 500/);

    clock.now += FAILED_REFETCH_MS;
    jwks.state.failWith = 0;
    jwks.state.keys = [k1.jwk];
    assert.equal(await kindOf(auth, await k1.sign(), p), 'authenticated');
    assert.equal(jwks.state.hits, 2);
    assert.equal(auth.jwksStatus()[0]?.ok, true);
  });

  test("a server that never answers is cut off at the rule's timeout", async (t) => {
    const jwks = await jwksServer(t);
    jwks.state.hang = true;
    const k1 = await signer('k1');
    const { auth } = setup(t);
    const outcome = await kindOf(auth, await k1.sign(), policy(jwks.uri, { timeout: '100ms' }));
    assert.equal(outcome, 'denied: Jwks remote fetch is failed');
    assert.match(auth.jwksStatus()[0]?.error ?? '', /abort|timeout/i);
  });

  test('nothing listening: refused, never thrown', async (t) => {
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const { auth } = setup(t);
    const outcome = await kindOf(
      auth,
      await (await signer('k1')).sign(),
      policy(`http://127.0.0.1:${port}/jwks`),
    );
    assert.equal(outcome, 'denied: Jwks remote fetch is failed');
  });

  test('the refresh timer refetches a set in use, and close() stops it', async (t) => {
    const jwks = await jwksServer(t);
    const [k1, k2, k3] = await Promise.all([signer('k1'), signer('k2'), signer('k3')]);
    jwks.state.keys = [k1.jwk];
    const { auth } = setup(t, { refreshMs: 25 });
    const p = policy(jwks.uri);
    assert.equal(await kindOf(auth, await k1.sign(), p), 'authenticated');

    // Rotated to two other keys: the refresh alone (no request) brings them in.
    jwks.state.keys = [k2.jwk, k3.jwk];
    while (auth.jwksStatus()[0]?.keys !== 2) await jwks.nextHit();
    const hits = jwks.state.hits;
    assert.equal(await kindOf(auth, await k2.sign(), p), 'authenticated');
    assert.ok(hits >= 2);

    auth.close();
    assert.deepEqual(auth.jwksStatus(), []);
  });
});
