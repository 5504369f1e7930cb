// Egress through a waypoint in the lab (root), as Istio's ambient egress walkthrough does it: a
// namespace `istio-egress` labelled `istio.io/use-waypoint`, its waypoint, and a ServiceEntry there for
// an outside host. A mesh pod calls `http://api.outside.test/get` by name; the ztunnel sends it to the
// waypoint, which resolves the entry's DNS endpoint (a Service of a namespace outside the mesh, through
// the cluster DNS) and connects to it itself. Then an AuthorizationPolicy that targets the ServiceEntry
// admits only GET, an HTTPRoute attached to the ServiceEntry edits requests, and a DestinationRule
// with `tls.mode: SIMPLE` makes the waypoint originate TLS to the outside server (the entry's port 80
// now targets 8443), verified against the rule's CA file.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { eventually, isRoot, skipUnlessRoot } from '../helpers/lab.ts';
import { enrolled, labMesh } from '../helpers/mesh-lab.ts';
import { serverCertificateFiles } from '../helpers/tls-files.ts';

const GATEWAY_API = 'gateway.networking.k8s.io/v1';
const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const HOST = 'api.outside.test';
const EGRESS = 'istio-egress';

const serviceEntry = (targetPort: number) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name: HOST, namespace: EGRESS },
  spec: {
    hosts: [HOST],
    location: 'MESH_EXTERNAL',
    ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort }],
    resolution: 'DNS',
    endpoints: [{ address: 'web.outside.svc.cluster.local' }],
  },
});

test('egress through a waypoint: by name, L7 policy on the ServiceEntry, TLS origination', {
  skip: !isRoot && 'NOT ROOT: lab end-to-end tests need root (CI runs them as root)',
}, async (t) => {
  if (skipUnlessRoot(t)) return;
  const mesh = await labMesh(t, 'egress');
  const { lab, admin } = mesh;
  const apply = (objects: unknown[]) => admin.call('POST', '/ambit/v1/apply', { objects });
  const files = await serverCertificateFiles(t, [HOST]);

  const client = await lab.addPod({
    name: 'client',
    node: 'node-1',
    namespace: 'shop',
    serviceAccount: 'client',
    labels: { app: 'client' },
  });
  await lab.addPod({ name: 'web', node: 'node-2', namespace: 'outside', labels: { app: 'web' } });
  await apply([
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
    },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'outside' } },
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: EGRESS, labels: { 'istio.io/use-waypoint': 'waypoint' } },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'outside' },
      spec: {
        selector: { app: 'web' },
        ports: [
          { name: 'http', port: 8080, targetPort: 8080 },
          { name: 'https', port: 8443, targetPort: 8443 },
        ],
      },
    },
    {
      apiVersion: GATEWAY_API,
      kind: 'Gateway',
      metadata: { name: 'waypoint', namespace: EGRESS },
      spec: {
        gatewayClassName: 'istio-waypoint',
        listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
      },
    },
    serviceEntry(8080),
  ]);
  await lab.run('web', ['ambit', 'sample', 'echo', '--port', '8080']);
  await lab.run('web', [
    'ambit',
    'sample',
    'echo',
    '--port',
    '8443',
    '--tls-cert',
    files.certPath,
    '--tls-key',
    files.keyPath,
  ]);
  await enrolled(lab, 'node-1', [client.address], 30_000);
  const waypoint = await eventually(
    async () => (await lab.status())?.pods.find((p) => p.labels[GATEWAY_NAME_LABEL] === 'waypoint'),
    60_000,
    'the egress waypoint pod',
  );
  const waypointLog = async () => {
    const status = await lab.status();
    const pod = status?.pods.find((p) => p.name === waypoint.name);
    const logs = await Promise.all(
      (pod?.processes ?? []).map((p) => readFile(p.log, 'utf8').catch(() => '')),
    );
    return logs.join('\n').split('\n').slice(-20).join('\n');
  };
  const curl = (args: string[]) =>
    lab.exec('client', ['curl', '-sS', '--max-time', '5', ...args], { timeoutMs: 20_000 });
  const get = async (path: string, args: string[] = []) => {
    const r = await curl(['-w', '\\n%{http_code}', ...args, `http://${HOST}${path}`]);
    const lines = r.stdout.trimEnd().split('\n');
    return {
      code: r.code,
      status: Number(lines.at(-1)),
      body: lines.slice(0, -1).join('\n'),
      stderr: r.stderr,
    };
  };

  // 1. By name, through the waypoint: it is the one that connects to the outside server.
  const first = await eventually(
    async () => {
      const r = await get('/get');
      return r.status === 200 ? r : undefined;
    },
    60_000,
    `http://${HOST}/get through the egress waypoint`,
  ).catch(async (err) => {
    throw new Error(`${err.message}\nwaypoint log:\n${await waypointLog()}`);
  });
  const reply = JSON.parse(first.body);
  assert.equal(reply.pod, 'web');
  assert.equal(reply.request.authority, HOST);
  assert.equal(reply.request.headers['x-forwarded-proto'], 'http', 'the waypoint handled the request');
  assert.equal(reply.request.peer.address, waypoint.address, 'the waypoint connected to the outside');
  assert.equal(reply.request.tls, undefined, 'cleartext until a DestinationRule says otherwise');

  // 2. L7 policy on the ServiceEntry, as Istio's walkthrough writes it: only GET from the client.
  await apply([
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'outside-get-only', namespace: EGRESS },
      spec: {
        targetRefs: [{ kind: 'ServiceEntry', group: 'networking.istio.io', name: HOST }],
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }],
            to: [{ operation: { methods: ['GET'] } }],
          },
        ],
      },
    },
  ]);
  const denied = await eventually(
    async () => {
      const r = await get('/post', ['-X', 'POST']);
      return r.status === 403 ? r : undefined;
    },
    30_000,
    'a POST to the ServiceEntry to be denied by the policy that targets it',
  );
  assert.equal(denied.body, 'RBAC: access denied');
  assert.equal((await get('/get')).status, 200, 'GET is still allowed');
  const policy = await admin.call<{
    status?: { conditions?: Array<{ type: string; status: string; message: string }> };
  }>('GET', `/apis/security.istio.io/v1/namespaces/${EGRESS}/authorizationpolicies/outside-get-only`);
  const bound = policy.status?.conditions?.find((c) => c.type === 'WaypointAccepted');
  assert.equal(bound?.status, 'True', JSON.stringify(policy.status));
  assert.match(bound?.message ?? '', new RegExp(`bound to ${EGRESS}/waypoint`));

  // L7 routing on the ServiceEntry: an HTTPRoute whose parent is the entry (Istio's ambient form).
  await apply([
    {
      apiVersion: GATEWAY_API,
      kind: 'HTTPRoute',
      metadata: { name: 'outside', namespace: EGRESS },
      spec: {
        parentRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: HOST }],
        rules: [
          {
            filters: [
              {
                type: 'RequestHeaderModifier',
                requestHeaderModifier: { set: [{ name: 'x-egress-route', value: 'outside' }] },
              },
            ],
            backendRefs: [{ group: 'networking.istio.io', kind: 'Hostname', name: HOST, port: 80 }],
          },
        ],
      },
    },
  ]);
  await eventually(
    async () => {
      const r = await get('/get');
      return r.status === 200 && JSON.parse(r.body).request.headers['x-egress-route'] === 'outside'
        ? true
        : undefined;
    },
    30_000,
    'the HTTPRoute on the ServiceEntry to apply at the waypoint',
  );

  // 3. TLS origination: the application still speaks plain HTTP to port 80; the waypoint speaks TLS
  // to the outside server's 8443, with the request host as SNI, and verifies it against the CA file.
  await apply([
    serviceEntry(8443),
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `${HOST}-tls`, namespace: EGRESS },
      spec: { host: HOST, trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: files.caPath } } },
    },
  ]);
  const secured = await eventually(
    async () => {
      const r = await get('/get');
      return r.status === 200 && JSON.parse(r.body).request.tls ? r : undefined;
    },
    30_000,
    'the waypoint to originate TLS to the outside server',
  ).catch(async (err) => {
    throw new Error(`${err.message}\nwaypoint log:\n${await waypointLog()}`);
  });
  assert.deepEqual(JSON.parse(secured.body).request.tls, { sni: HOST, alpn: null });

  // 4. The waypoint's request metrics name the ServiceEntry's host, as Istio's do.
  const metrics = await lab.exec(waypoint.name, ['curl', '-sS', 'http://127.0.0.1:15020/metrics']);
  const lines = metrics.stdout.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
  const ours = lines.filter((l) => l.includes(`destination_service="${HOST}"`));
  assert.ok(ours.length > 0, `istio_requests_total for ${HOST}:\n${lines.join('\n')}`);
  assert.ok(
    ours.every(
      (l) =>
        l.includes(`destination_service_name="${HOST}"`) &&
        l.includes(`destination_service_namespace="${EGRESS}"`),
    ),
    ours.join('\n'),
  );
  assert.ok(
    ours.some((l) => l.includes('response_code="403"')),
    'the denied POST is counted',
  );
});
