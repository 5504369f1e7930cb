// `ambit describe service` lists the routes attached to the Service with their Accepted condition, for a
// cluster-wide token (consumer routes in other namespaces too) and for a token that may read only the
// Service's namespace (its own routes). A child process against an in-process control plane on 127.0.0.1.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ambit } from '../helpers/control.ts';
import { startTestControl } from '../helpers/mesh.ts';

const SETUP = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Namespace
metadata: { name: client }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: own, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, port: 80 }]
  rules: [{ backendRefs: [{ name: web, port: 80 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: theirs, namespace: client }
spec:
  parentRefs: [{ group: "", kind: Service, name: web, namespace: shop, port: 80 }]
`;

test('ambit describe service shows the routes attached to it', async (t) => {
  const cp = await startTestControl(t);
  const server = `http://${cp.adminAddress}`;
  const admin = {
    AMBIT_SERVER: server,
    AMBIT_TOKEN: (await cp.adminTokens.create({ role: 'cluster-admin' })).token,
  };
  assert.equal((await ambit(['apply', '-f', '-'], admin, SETUP)).code, 0);

  const all = await ambit(['describe', 'service', 'web', '-n', 'shop'], admin);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /\n {2}HTTPRoute shop\/own {2}Accepted=False \(NoWaypoint\)/);
  assert.match(all.stdout, /HTTPRoute client\/theirs {2}Accepted=False/);

  const shopOnly = {
    AMBIT_SERVER: server,
    AMBIT_TOKEN: (await cp.adminTokens.create({ role: 'view', namespaces: ['shop'] })).token,
  };
  const mine = await ambit(['describe', 'service', 'web', '-n', 'shop'], shopOnly);
  assert.equal(mine.code, 0, mine.stderr);
  assert.match(mine.stdout, /HTTPRoute shop\/own/);
  assert.doesNotMatch(mine.stdout, /client\/theirs/);
});
