// The status of a waypoint Gateway and of the routes it serves follows the running mesh when read: with
// no node to place a replica on, the Gateway is not Programmed and a route on its Service is not
// Accepted (nothing enforces it), never "enforced"; a route on a Service no waypoint serves says so.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminFetch, startTestControl } from '../../helpers/mesh.ts';

const objects = [
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  },
  {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name: 'waypoint', namespace: 'shop' },
    spec: {
      gatewayClassName: 'istio-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'shop', labels: { 'istio.io/use-waypoint': 'waypoint' } },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  },
  {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'plain', namespace: 'shop' },
    spec: { selector: { app: 'plain' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  },
  ...['web', 'plain'].map((svc) => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: `to-${svc}`, namespace: 'shop' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: svc, port: 80 }],
      rules: [
        {
          backendRefs: [
            { name: svc, port: 80 },
            { name: 'missing', port: 80 },
          ],
        },
      ],
    },
  })),
];

type Condition = { type: string; status: string; reason: string; message: string };
type Status = {
  conditions: Condition[];
  parents?: Array<{ conditions: Condition[] }>;
  addresses?: unknown[];
};

test('waypoint Gateway and route status follow what runs', async (t) => {
  const cp = await startTestControl(t);
  const applied = await adminFetch(cp, '/ambit/v1/apply', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ objects }),
  });
  assert.equal(applied.status, 200, await applied.text());
  // The registry derives after the commit (debounced): read until the Service carries its waypoint.
  const read = async (path: string) =>
    ((await (await adminFetch(cp, path)).json()) as { status: Status }).status;
  let route: Status | undefined;
  for (let i = 0; i < 100; i++) {
    route = await read('/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/to-web');
    if (route.parents?.[0]?.conditions.some((c) => c.reason === 'WaypointNotRunning')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const gw = await read('/apis/gateway.networking.k8s.io/v1/namespaces/shop/gateways/waypoint');
  const programmed = gw.conditions.find((c) => c.type === 'Programmed');
  assert.equal(programmed?.status, 'False', JSON.stringify(gw));
  assert.equal(programmed?.reason, 'NoResources');
  assert.deepEqual(gw.addresses, []);

  const accepted = route!.parents![0]!.conditions.find((c) => c.type === 'Accepted');
  assert.deepEqual(
    [accepted?.status, accepted?.reason],
    ['False', 'WaypointNotRunning'],
    JSON.stringify(route),
  );
  const resolved = route!.parents![0]!.conditions.find((c) => c.type === 'ResolvedRefs');
  assert.deepEqual([resolved?.status, resolved?.reason], ['False', 'BackendNotFound']);
  assert.equal(route!.conditions[0]!.status, 'False', 'the summary never says accepted');

  const plain = await read('/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/to-plain');
  const plainAccepted = plain.parents![0]!.conditions.find((c) => c.type === 'Accepted');
  assert.deepEqual([plainAccepted?.status, plainAccepted?.reason], ['False', 'NoWaypoint']);
});
