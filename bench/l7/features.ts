// The request features whose cost the L7 benchmark measures at the waypoint, one at a time: an ALLOW
// AuthorizationPolicy of 100 rules, RequestAuthentication (a JWT on every request), a global
// RateLimitPolicy (a Redis round trip per request) and tracing at 100 % sampling. Each is applied through
// the control plane and is not measured until the waypoint is seen enforcing it (a request it must
// refuse is refused, Redis keys appear, spans arrive); each is deleted after, and the waypoint seen
// without it again. Redis and the span sink run in a pod of an un-enrolled namespace, which the
// waypoint (whose own pod is not captured) reaches directly.

import { join } from 'node:path';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { Mesh } from '../../src/cli/up.ts';
import { adminGet } from '../../src/cli/ztunnel.ts';
import { type Lab, waitUntil } from '../../src/lab/index.ts';
import { waypointAdminSocket } from '../../src/waypoint/index.ts';
import { REDIS_PORT } from '../redis.ts';

export const SINK_PORT = 4318;
const ISSUER = 'https://issuer.bench.ambit.test';
const AUDIENCE = 'bench';
const PROVIDER = 'bench-otlp';
/** The tracer's batch flush interval (tracer.ts) and a margin: every span is exported within it. */
const FLUSH_MS = 5_000 + 2_000;

export type FeatureName = 'authz' | 'authz1' | 'jwt' | 'ratelimit' | 'tracing';

/** What a feature run is checked against after its measurement: a ratio and a line saying what it is. */
export interface Evidence {
  ratio: number;
  note: string;
}

export interface Feature {
  name: FeatureName;
  label: string;
  /** Sent with every request of the measurement. */
  headers: string[];
  /** Headers with which every request must be refused while the feature is in effect (proves the load's headers count). */
  refusedHeaders?: string[];
  /** Applies the resources and waits until the waypoint enforces them; throws when it never does. */
  apply(): Promise<void>;
  /** Zeroes the counters `evidence` reads (after apply, before the measured load). */
  reset?(): Promise<void>;
  /** What the feature's backend saw of the `sent` requests answered since reset. */
  evidence?(sent: number): Promise<Evidence>;
  /** Deletes the resources and waits until the waypoint no longer enforces them. */
  remove(): Promise<void>;
}

export interface FeatureSite {
  mesh: Mesh;
  /** The waypoint's Service: its namespace, name and the URL the client asks for. */
  namespace: string;
  service: string;
  url: string;
  /** The pod the load runs in, and its principal. */
  client: string;
  principal: string;
  /** A pod in the client's namespace with another identity: the 100-rule ALLOW must refuse it. */
  stranger: string;
  /** The un-enrolled pod that runs Redis and the span sink, and its address. */
  backends: { pod: string; address: string };
}

/** An HTTP probe from a pod: the status (0: curl failed) and the response head. */
async function probe(
  lab: Lab,
  pod: string,
  url: string,
  opts: { method?: string; headers?: readonly string[] } = {},
): Promise<{ status: number; head: string }> {
  const r = await lab.exec(pod, [
    'curl',
    '-s',
    '-o',
    '/dev/null',
    '-D',
    '-',
    '--max-time',
    '3',
    '-X',
    opts.method ?? 'GET',
    ...(opts.headers ?? []).flatMap((h) => ['-H', h]),
    url,
  ]);
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(r.stdout)?.[1] ?? 0);
  return { status: r.code === 0 ? status : 0, head: r.stdout };
}

function eventually<T>(
  what: string,
  probeOnce: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  return waitUntil(what, timeoutMs, probeOnce, 250);
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * An ALLOW of `rules` rules (100 for the feature; 1, its last rule alone, to tell the gate's fixed cost
 * from the rules'): every rule's `from` and `to` fit the client, only the last rule's `when` does.
 */
export function allowPolicy(
  namespace: string,
  service: string,
  principal: string,
  clientNs: string,
  rules: number,
) {
  const first = 100 - rules;
  const rule = (i: number) => ({
    from: [
      {
        source: {
          principals: [principal, `cluster.local/ns/team-${i}/sa/*`],
          namespaces: [clientNs, `team-${i}`],
        },
      },
    ],
    to: [{ operation: { methods: ['GET', 'HEAD'], paths: ['/', `/api/v${i}/*`] } }],
    // Rules 0–98 want a tenant header the load never sends: each is evaluated through `from` and `to`
    // and fails on its last part, so all 100 are walked for every request.
    when:
      i < 99
        ? [{ key: 'request.headers[x-bench-tenant]', values: [`tenant-${i}`] }]
        : [{ key: 'source.namespace', values: [clientNs] }],
  });
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: `bench-allow-${rules}`, namespace },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: service }],
      action: 'ALLOW',
      rules: Array.from({ length: rules }, (_, i) => rule(first + i)),
    },
  };
}

export interface JwtMaterial {
  /** The inline JWKS (the public key), a token it verifies, and one signed by another key with the same kid. */
  jwks: string;
  token: string;
  forged: string;
}

/** An RS256 key pair made for this run, and the tokens the load sends. */
export async function jwtMaterial(): Promise<JwtMaterial> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'RS256', use: 'sig' };
  const sign = (key: CryptoKey) =>
    new SignJWT({ scope: 'bench' })
      .setProtectedHeader({ alg: 'RS256', kid: 'bench', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject('bench-client')
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(key);
  // The same kid, another key: a token whose signature must fail.
  const other = await generateKeyPair('RS256');
  return {
    jwks: JSON.stringify({ keys: [jwk] }),
    token: await sign(privateKey),
    forged: await sign(other.privateKey),
  };
}

/** The RequestAuthentication on the Service: the run's issuer, audience and inline JWKS. */
export function requestAuthentication(namespace: string, service: string, jwks: string) {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name: 'bench-jwt', namespace },
    spec: {
      targetRefs: [{ group: '', kind: 'Service', name: service }],
      jwtRules: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks }],
    },
  };
}

/** The features, ready to apply one at a time. */
export function features(site: FeatureSite, jwt: JwtMaterial): Feature[] {
  const { mesh, namespace, service, url, client } = site;
  const { lab, admin } = mesh;
  const apply = (objects: unknown[]) => admin.call('POST', '/ambit/v1/apply', { objects });
  const remove = (refs: Array<{ kind: string; namespace?: string; name: string }>) =>
    admin.call('POST', '/ambit/v1/delete', { refs });
  const target = [{ group: '', kind: 'Service', name: service }];
  const meshConfig = (spec: Record<string, unknown>) => ({
    apiVersion: 'ambit.dev/v1alpha1',
    kind: 'MeshConfig',
    metadata: { name: 'default' },
    spec,
  });
  const status = async (pod: string, opts?: Parameters<typeof probe>[3]) =>
    (await probe(lab, pod, url, opts)).status;
  const redis = (...args: string[]) =>
    lab.exec(site.backends.pod, [
      'redis-cli',
      '-h',
      site.backends.address,
      '-p',
      String(REDIS_PORT),
      ...args,
    ]);
  const sinkUrl = `http://${site.backends.address}:${SINK_PORT}`;
  const sink = async (path: string, method = 'GET') => {
    const r = await lab.exec(site.backends.pod, [
      'curl',
      '-s',
      '--max-time',
      '3',
      '-X',
      method,
      `${sinkUrl}${path}`,
    ]);
    if (r.code !== 0) throw new Error(`the span sink did not answer ${method} ${path}: ${r.stderr}`);
    return r.stdout;
  };
  const sinkStats = async () =>
    JSON.parse(await sink('/stats')) as { spans: number; server: number; client: number; malformed: number };
  /** The waypoint replica's tracer counters, from its admin socket. */
  const tracerStats = async () => {
    for (const pod of (await lab.status())?.pods ?? []) {
      if (!pod.processes.some((p) => p.running && p.command[1] === 'waypoint')) continue;
      const socket = waypointAdminSocket(join(mesh.home, 'nodes', pod.node), pod.name);
      const dump = (await adminGet(socket, '/config_dump', 'waypoint')) as {
        tracing?: Record<string, { exported: number; dropped: number; failed: number }>;
      };
      return dump.tracing ?? {};
    }
    return {};
  };

  const authz = (rules: number): Feature => ({
    name: rules === 100 ? 'authz' : 'authz1',
    label: `ALLOW policy, ${rules} rule${rules === 1 ? '' : 's'}`,
    headers: [],
    async apply() {
      const clientNs = site.principal.split('/')[2]!;
      await apply([allowPolicy(namespace, service, site.principal, clientNs, rules)]);
      await eventually(`the ${rules}-rule ALLOW to refuse another identity and admit the client`, async () =>
        (await status(site.stranger)) === 403 && (await status(client)) === 200 ? true : undefined,
      );
      const post = await probe(lab, client, url, { method: 'POST' });
      if (post.status !== 403) throw new Error(`a POST (no rule allows it) got ${post.status}, not 403`);
    },
    async remove() {
      await remove([{ kind: 'AuthorizationPolicy', namespace, name: `bench-allow-${rules}` }]);
      await eventually('the ALLOW policy to be gone', async () =>
        (await status(site.stranger)) === 200 ? true : undefined,
      );
    },
  });

  const bearer = (t: string) => `Authorization: Bearer ${t}`;
  const authentication: Feature = {
    name: 'jwt',
    label: 'JWT (RS256) on every request',
    headers: [bearer(jwt.token)],
    refusedHeaders: [bearer(jwt.forged)],
    async apply() {
      await apply([requestAuthentication(namespace, service, jwt.jwks)]);
      await eventually('RequestAuthentication to refuse a forged token and admit a valid one', async () =>
        (await status(client, { headers: [bearer(jwt.forged)] })) === 401 &&
        (await status(client, { headers: [bearer(jwt.token)] })) === 200
          ? true
          : undefined,
      );
    },
    async remove() {
      await remove([{ kind: 'RequestAuthentication', namespace, name: 'bench-jwt' }]);
      await eventually('RequestAuthentication to be gone', async () =>
        (await status(client, { headers: [bearer(jwt.forged)] })) === 200 ? true : undefined,
      );
    },
  };

  const rateLimit: Feature = {
    name: 'ratelimit',
    label: 'global rate limit (Redis)',
    headers: [],
    async apply() {
      await apply([
        meshConfig({
          rateLimit: {
            backend: { type: 'Redis', redis: { url: `redis://${site.backends.address}:${REDIS_PORT}` } },
            // A check Redis does not answer is a 500, so a run that skipped Redis shows as errors.
            failClosed: true,
          },
        }),
        {
          apiVersion: 'ambit.dev/v1alpha1',
          kind: 'RateLimitPolicy',
          metadata: { name: 'bench-global', namespace },
          spec: {
            targetRefs: target,
            global: { rules: [{ name: 'bench', limit: { requests: 1_000_000_000, unit: 'Second' } }] },
          },
        },
      ]);
      await eventually('the global rate limit to count requests in Redis', async () => {
        const r = await probe(lab, client, url);
        if (r.status !== 200 || !/^ratelimit-policy: .*bench/im.test(r.head)) return undefined;
        return Number((await redis('DBSIZE')).stdout.trim()) > 0 ? true : undefined;
      });
    },
    async reset() {
      const r = await redis('CONFIG', 'RESETSTAT');
      if (!/OK/.test(r.stdout)) throw new Error(`redis-cli CONFIG RESETSTAT: ${r.stdout}${r.stderr}`);
    },
    async evidence(sent) {
      const info = (await redis('INFO', 'commandstats')).stdout;
      const calls = (cmd: string) =>
        Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
      const keys = Number((await redis('DBSIZE')).stdout.trim());
      return {
        ratio: calls('incrby') / sent,
        note: `Redis INCRBY ${calls('incrby')}, EXEC ${calls('exec')} for ${sent} requests answered; ${keys} keys now`,
      };
    },
    async remove() {
      await remove([
        { kind: 'RateLimitPolicy', namespace, name: 'bench-global' },
        { kind: 'MeshConfig', name: 'default' },
      ]);
      await eventually('the rate limit to be gone', async () => {
        const r = await probe(lab, client, url);
        return r.status === 200 && !/^ratelimit-policy:/im.test(r.head) ? true : undefined;
      });
    },
  };

  let tracerBefore: Awaited<ReturnType<typeof tracerStats>> = {};
  const tracing: Feature = {
    name: 'tracing',
    label: 'tracing, 100 % sampled',
    headers: [],
    async apply() {
      await apply([
        meshConfig({
          extensionProviders: [
            {
              name: PROVIDER,
              opentelemetry: {
                service: site.backends.address,
                port: SINK_PORT,
                http: { path: '/v1/traces' },
              },
            },
          ],
        }),
        {
          apiVersion: 'telemetry.istio.io/v1',
          kind: 'Telemetry',
          metadata: { name: 'bench-tracing', namespace },
          spec: { tracing: [{ providers: [{ name: PROVIDER }], randomSamplingPercentage: 100 }] },
        },
      ]);
      // The tracer is made on the first traced request (the SDK loads meanwhile): ask until spans arrive.
      await eventually(
        'spans to reach the sink',
        async () => {
          await status(client);
          return (await sinkStats()).server > 0 ? true : undefined;
        },
        60_000,
      );
    },
    async reset() {
      // Spans of the checks above may still be in the tracer's batch: let it flush first.
      await wait(FLUSH_MS);
      await sink('/reset', 'POST');
      tracerBefore = await tracerStats();
    },
    async evidence(sent) {
      // Wait for the last batch, then until the count stops growing.
      await wait(FLUSH_MS);
      let s = await sinkStats();
      for (let i = 0; i < 10; i++) {
        await wait(1_000);
        const again = await sinkStats();
        if (again.spans === s.spans) break;
        s = again;
      }
      const t = Object.values(await tracerStats())[0];
      const b = Object.values(tracerBefore)[0];
      const dropped = (t?.dropped ?? 0) - (b?.dropped ?? 0);
      const failed = (t?.failed ?? 0) - (b?.failed ?? 0);
      return {
        ratio: s.server / sent,
        note: `sink: ${s.server} server + ${s.client} client spans (${s.spans} in all${s.malformed ? `, ${s.malformed} exports malformed` : ''}) for ${sent} requests answered; waypoint tracer: ${dropped} dropped, ${failed} failed`,
      };
    },
    async remove() {
      await remove([
        { kind: 'Telemetry', namespace, name: 'bench-tracing' },
        { kind: 'MeshConfig', name: 'default' },
      ]);
      await eventually('the tracer to be retired', async () =>
        Object.keys(await tracerStats()).length === 0 ? true : undefined,
      );
    },
  };

  return [authz(1), authz(100), authentication, rateLimit, tracing];
}
