// `ambit describe service|workload` says which L7 policies, rate limits and telemetry settings apply
// to a Service and at which waypoint: those whose targetRefs name the Service or the waypoint's Gateway,
// and the tracing Telemetry gives with Istio's precedence. A child process against an in-process
// control plane on 127.0.0.1.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ambit } from '../helpers/control.ts';
import { startTestControl } from '../helpers/mesh.ts';

const SETUP = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: waypoint, namespace: shop }
spec:
  gatewayClassName: istio-waypoint
  listeners: [{ name: mesh, port: 15008, protocol: HBONE }]
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: other, namespace: shop }
spec: { selector: { app: other }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web-get, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: web }]
  rules: [{ to: [{ operation: { methods: [GET] } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: other-only, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: other }]
  action: DENY
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: web-jwt, namespace: shop }
spec:
  targetRefs: [{ kind: Service, group: "", name: web }]
  jwtRules: [{ issuer: "https://issuer.example", jwksUri: "https://issuer.example/jwks.json" }]
---
apiVersion: ambit.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: all-10rps, namespace: shop }
spec:
  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: waypoint }]
  local: { rules: [{ limit: { requests: 10, unit: Second } }] }
---
apiVersion: ambit.dev/v1alpha1
kind: MeshConfig
metadata: { name: default }
spec:
  extensionProviders: [{ name: otel, opentelemetry: { service: collector.obs.svc.cluster.local, port: 4317 } }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: tracing, namespace: shop }
spec:
  tracing: [{ providers: [{ name: otel }], randomSamplingPercentage: 25 }]
`;

test('ambit describe service shows the L7 policies, rate limits and tracing at its waypoint', async (t) => {
  const cp = await startTestControl(t);
  const env = {
    AMBIT_SERVER: `http://${cp.adminAddress}`,
    AMBIT_TOKEN: (await cp.adminTokens.create({ role: 'cluster-admin' })).token,
  };
  const applied = await ambit(['apply', '-f', '-'], env, SETUP);
  assert.equal(applied.code, 0, applied.stderr);

  const r = await ambit(['describe', 'service', 'web', '-n', 'shop'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /at waypoint shop\/waypoint/);
  assert.match(r.stdout, /AuthorizationPolicy: +shop\/web-get \(ALLOW\)\n/);
  assert.doesNotMatch(r.stdout, /other-only/);
  assert.match(r.stdout, /RequestAuthentication: shop\/web-jwt/);
  assert.match(r.stdout, /RateLimitPolicy: +shop\/all-10rps/);
  assert.match(r.stdout, /Tracing: +otel at 25%; access log on/);

  const status = await ambit(['get', 'authorizationpolicy', 'web-get', '-n', 'shop', '-o', 'json'], env);
  const conditions = (JSON.parse(status.stdout) as { status: { conditions: Array<Record<string, string>> } })
    .status.conditions;
  const bound = conditions.find((c) => c.type === 'WaypointAccepted');
  assert.equal(bound?.status, 'True', JSON.stringify(conditions));
  assert.match(bound!.message!, /bound to shop\/waypoint/);
});
