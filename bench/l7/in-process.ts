// Two of the features are pure computation on the request path: the 100-rule ALLOW (evaluateL7) and
// the JWT check (JwtAuthenticator). Their cost through the waypoint can sit inside the lab's noise, so
// the benchmark also times them here, in its own process, on the very resources it applies to the
// waypoint: CPU µs per request (process.cpuUsage over sequential calls, after a warm-up).

import { authorizationPolicySchema, requestAuthenticationSchema } from '../../src/config/index.ts';
import { logger } from '../../src/log/index.ts';
import {
  compileL7Policy,
  evaluateL7,
  JwtAuthenticator,
  type RequestAttributes,
} from '../../src/policy/index.ts';
import { type BenchResult, round } from '../harness.ts';
import { allowPolicy, type JwtMaterial, requestAuthentication } from './features.ts';

const WARM = 2_000;
const POLICY_CALLS = 50_000;
const JWT_CALLS = 5_000;

/** CPU µs per call of `fn` over `n` sequential calls, each awaited. */
async function cpuPerCall(n: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < WARM; i++) await fn();
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

/** CPU µs per call of a synchronous `fn` over `n` calls. */
function cpuPerSyncCall(n: number, fn: () => unknown): number {
  for (let i = 0; i < WARM; i++) fn();
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

export interface InProcessSite {
  namespace: string;
  service: string;
  /** The load's client: its principal (`cluster.local/ns/…/sa/…`) and namespace. */
  principal: string;
  clientNamespace: string;
}

export async function inProcessRows(site: InProcessSite, jwt: JwtMaterial): Promise<BenchResult[]> {
  const attrs: RequestAttributes = {
    method: 'GET',
    path: '/',
    host: '198.19.0.2:80',
    headers: { host: '198.19.0.2:80', 'user-agent': 'ambit-bench-l7' },
    source: { principal: `spiffe://${site.principal}`, ip: '198.18.1.2' },
    remoteIp: '198.18.1.2',
    destination: { port: 80 },
  };
  /** CPU µs per request of evaluateL7 over the `rules`-rule ALLOW the waypoint gets. */
  const evaluation = (rules: number) => {
    const policy = authorizationPolicySchema.parse(
      allowPolicy(site.namespace, site.service, site.principal, site.clientNamespace, rules),
    );
    const compiled = [compileL7Policy(policy)];
    const decision = evaluateL7(compiled, attrs);
    if (!decision.allow || decision.rule !== rules - 1)
      throw new Error(`the ${rules}-rule ALLOW does not admit the bench client by its last rule`);
    // A fresh request each call, as the waypoint makes one per request (what rules derive from it once
    // per request is derived on every call here too).
    return cpuPerSyncCall(POLICY_CALLS, () =>
      evaluateL7(compiled, { ...attrs, source: { ...attrs.source } }),
    );
  };
  const one = evaluation(1);
  const hundred = evaluation(100);

  const authn = [
    requestAuthenticationSchema.parse(requestAuthentication(site.namespace, site.service, jwt.jwks)),
  ];
  const authenticator = new JwtAuthenticator({ log: logger('bench') });
  let verify: number;
  try {
    const req = {
      headers: { authorization: `Bearer ${jwt.token}` },
      path: '/',
      method: 'GET',
      scheme: 'http',
    };
    const first = await authenticator.authenticate(req, authn);
    if (first.kind !== 'authenticated') throw new Error(`the bench token is not accepted: ${first.kind}`);
    verify = await cpuPerCall(JWT_CALLS, () => authenticator.authenticate(req, authn));
  } finally {
    authenticator.close();
  }
  return [
    {
      name: 'in process: evaluateL7, the 1-rule ALLOW',
      value: round(one, 2),
      unit: 'µs',
      note: `CPU per request, ${POLICY_CALLS.toLocaleString('en-US')} calls in the bench's own process`,
    },
    {
      name: 'in process: evaluateL7, the 100-rule ALLOW',
      value: round(hundred, 1),
      unit: 'µs',
      baseline: round(one, 2),
      note: `CPU per request, ${POLICY_CALLS.toLocaleString('en-US')} calls in the bench's own process; the last rule decides; baseline: 1 rule`,
    },
    {
      name: 'in process: JwtAuthenticator.authenticate, RS256',
      value: round(verify, 1),
      unit: 'µs',
      note: `CPU per request, ${JWT_CALLS.toLocaleString('en-US')} sequential calls in the bench's own process (jose's compactVerify through WebCrypto)`,
    },
  ];
}
