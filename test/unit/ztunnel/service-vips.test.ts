import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServiceResource } from '../../../src/xds/index.ts';
import { vipInputs } from '../../../src/ztunnel/service-vips.ts';

const endpoint = (address: string, node: string, enrolled: boolean, sidecar = false) => ({
  workload: `w-${address}`,
  name: `p-${address}`,
  address,
  node,
  enrolled,
  sidecar,
  ports: { '80': 8080 },
});

const service = (key: string, extra: Partial<ServiceResource> = {}): ServiceResource => ({
  key,
  name: key.split('/')[1]!,
  namespace: 'shop',
  hostname: `${key.split('/')[1]}.shop.svc.cluster.local`,
  vips: ['198.19.0.4'],
  ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
  endpoints: [
    endpoint('198.18.1.2', 'node-1', true),
    endpoint('198.18.1.3', 'node-1', false),
    endpoint('198.18.2.2', 'node-2', true),
  ],
  ...extra,
});

test("only a mesh endpoint on this node goes through the ztunnel's inbound listener", () => {
  const [input] = vipInputs([service('shop/web')], 'node-1');
  assert.deepEqual(
    input!.endpoints.map((e) => [e.address, e.inboundCapture]),
    [
      ['198.18.1.2', true],
      ['198.18.1.3', false],
      ['198.18.2.2', false],
    ],
  );
});

test('a sidecar endpoint on this node is reached directly: its own proxy captures in its pod', () => {
  const [input] = vipInputs(
    [service('shop/web', { endpoints: [endpoint('198.18.1.2', 'node-1', true, true)] })],
    'node-1',
  );
  assert.deepEqual(
    input!.endpoints.map((e) => [e.address, e.inboundCapture]),
    [['198.18.1.2', false]],
  );
});

test('ServiceEntries get no kube-proxy rules', () => {
  const inputs = vipInputs(
    [service('shop/web'), service('ServiceEntry/shop/api.test', { kind: 'ServiceEntry' })],
    'node-1',
  );
  assert.deepEqual(
    inputs.map((i) => i.key),
    ['shop/web'],
  );
});
