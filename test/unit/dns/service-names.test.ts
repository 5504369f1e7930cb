import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NameTable, serviceRecords } from '../../../src/dns/index.ts';

const svc = (hostname: string, vips: string[], endpoints: string[] = [], kind?: string) => ({
  hostname,
  vips,
  endpoints: endpoints.map((address) => ({ address })),
  ...(kind ? { kind } : {}),
});

describe('the names services give', () => {
  test('a Service answers with its VIPs, split by family', () => {
    assert.deepEqual(serviceRecords([svc('web.shop.svc.cluster.local', ['198.19.0.9', '2001:2::9'])]), [
      { name: 'web.shop.svc.cluster.local', ipv4: ['198.19.0.9'], ipv6: ['2001:2::9'] },
    ]);
  });
  test("a headless Service answers with its endpoints' addresses; one without any is left out", () => {
    const records = serviceRecords([
      svc('db.shop.svc.cluster.local', [], ['198.18.1.4', '198.18.2.3']),
      svc('empty.shop.svc.cluster.local', []),
    ]);
    assert.deepEqual(records, [
      { name: 'db.shop.svc.cluster.local', ipv4: ['198.18.1.4', '198.18.2.3'], ipv6: [] },
    ]);
  });
  test('a ServiceEntry without an address is no name (its endpoints are not its address)', () => {
    assert.deepEqual(serviceRecords([svc('*.example.test', [], ['198.18.2.7'], 'ServiceEntry')]), []);
  });
  test('services sharing a hostname pool their addresses; case and a trailing dot do not matter', () => {
    const records = serviceRecords([
      svc('API.test.', ['198.19.0.2']),
      svc('api.test', ['198.19.0.1', '198.19.0.2']),
    ]);
    assert.deepEqual(records, [{ name: 'api.test', ipv4: ['198.19.0.1', '198.19.0.2'], ipv6: [] }]);
  });
  test('the cluster DNS leaves ServiceEntries out; wildcard hosts resolve in the proxy', () => {
    const all = [
      svc('web.shop.svc.cluster.local', ['198.19.0.9']),
      svc('*.ext.test', ['198.19.0.50'], [], 'ServiceEntry'),
    ];
    const cluster = new NameTable(
      serviceRecords(all, (s) => s.kind !== 'ServiceEntry'),
      { authoritativeZones: ['cluster.local'] },
    );
    assert.equal(cluster.lookup('a.ext.test', 'A').kind, 'unknown');
    assert.equal(cluster.lookup('nope.shop.svc.cluster.local', 'A').kind, 'nxdomain');
    const proxy = new NameTable(serviceRecords(all));
    assert.deepEqual(proxy.lookup('a.ext.test', 'A'), {
      kind: 'answer',
      name: 'a.ext.test',
      addresses: ['198.19.0.50'],
      type: 'A',
    });
    assert.equal(proxy.lookup('nope.shop.svc.cluster.local', 'A').kind, 'unknown', 'forwarded, not NXDOMAIN');
  });
});
