// Which store a control plane opens, as flags and the config file give it: every bad combination is
// refused before anything starts, naming the flag.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type StoreSettings, storeChoice } from '../../../src/control/index.ts';
import { hasCode } from '../../../src/errors/index.ts';

describe('store settings', () => {
  test('the embedded store is the default; etcd takes endpoints as a list or comma-separated', async () => {
    assert.deepEqual(await storeChoice({}), { kind: 'embedded' });
    assert.deepEqual(
      await storeChoice({ store: 'etcd', etcdEndpoints: 'http://127.0.0.1:2379, http://127.0.0.2:2379/' }),
      {
        kind: 'etcd',
        etcd: { endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.2:2379'], prefix: '/ambit' },
      },
    );
    const fromFile = await storeChoice({
      store: 'etcd',
      etcdEndpoints: ['http://[::1]:2379'],
      etcdPrefix: '/m/1',
    });
    assert.deepEqual(fromFile, { kind: 'etcd', etcd: { endpoints: ['http://[::1]:2379'], prefix: '/m/1' } });
  });

  test('TLS files are read; a missing one is named', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ambit-etcd-tls-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----CA');
    await writeFile(join(dir, 'cert.pem'), '-----BEGIN CERTIFICATE-----CERT');
    await writeFile(join(dir, 'empty.pem'), '');
    await writeFile(join(dir, 'key.pem'), '-----BEGIN PRIVATE KEY-----KEY');
    const got = await storeChoice({
      store: 'etcd',
      etcdEndpoints: 'https://etcd-1:2379',
      etcdCa: join(dir, 'ca.pem'),
      etcdCert: join(dir, 'cert.pem'),
      etcdKey: join(dir, 'key.pem'),
    });
    assert.deepEqual(got.kind === 'etcd' && got.etcd.tls, {
      caPem: '-----BEGIN CERTIFICATE-----CA',
      certPem: '-----BEGIN CERTIFICATE-----CERT',
      keyPem: '-----BEGIN PRIVATE KEY-----KEY',
    });
    await assert.rejects(
      storeChoice({ store: 'etcd', etcdEndpoints: 'https://etcd-1:2379', etcdCa: join(dir, 'empty.pem') }),
      /--etcd-ca .*empty\.pem holds no PEM block/,
    );
    await assert.rejects(
      storeChoice({ store: 'etcd', etcdEndpoints: 'https://etcd-1:2379', etcdCa: join(dir, 'nope.pem') }),
      /--etcd-ca .*nope\.pem: .*ENOENT/,
    );
  });

  const refused: Array<[string, StoreSettings, RegExp]> = [
    ['etcd flags without --store etcd', { etcdEndpoints: 'http://127.0.0.1:2379' }, /need --store etcd/],
    ['no endpoints', { store: 'etcd' }, /needs --etcd-endpoints/],
    [
      'an endpoint that is not a URL',
      { store: 'etcd', etcdEndpoints: '127.0.0.1:2379' },
      /is not a URL|must be http/,
    ],
    [
      'an endpoint with a path',
      { store: 'etcd', etcdEndpoints: 'http://127.0.0.1:2379/v3' },
      /must be http:\/\/host:port/,
    ],
    [
      'an endpoint without a port',
      { store: 'etcd', etcdEndpoints: 'http://etcd' },
      /must be http:\/\/host:port/,
    ],
    [
      'https and http mixed',
      { store: 'etcd', etcdEndpoints: 'https://a:2379,http://b:2379', etcdCa: '/x' },
      /every member as https/,
    ],
    ['https without a CA', { store: 'etcd', etcdEndpoints: 'https://a:2379' }, /need --etcd-ca/],
    ['a CA for http', { store: 'etcd', etcdEndpoints: 'http://a:2379', etcdCa: '/x' }, /are for https/],
    [
      'a certificate without its key',
      { store: 'etcd', etcdEndpoints: 'https://a:2379', etcdCa: '/x', etcdCert: '/c' },
      /--etcd-cert and --etcd-key go together/,
    ],
    [
      'a prefix without a slash',
      { store: 'etcd', etcdEndpoints: 'http://a:2379', etcdPrefix: 'ambit' },
      /--etcd-prefix "ambit" must start with \//,
    ],
    [
      'a prefix with spaces',
      { store: 'etcd', etcdEndpoints: 'http://a:2379', etcdPrefix: '/a b' },
      /--etcd-prefix/,
    ],
  ];
  for (const [name, settings, message] of refused) {
    test(`refused: ${name}`, async () => {
      await assert.rejects(storeChoice(settings), (e) => {
        assert.ok(hasCode(e, 'AMBIT_ERR_CONTROL_CONFIG'), String(e));
        assert.match((e as Error).message, message);
        return true;
      });
    });
  }
});
