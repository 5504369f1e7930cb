// The waypoint's streamed state: each type lands in its own field, a delta with one bad resource is
// refused whole (the proxy NACKs it) and the last good state stays, and MeshConfig is one object.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WaypointState } from '../../../src/waypoint/index.ts';
import { TYPE } from '../../../src/xds/index.ts';

const ap = (name: string, spec: Record<string, unknown>) => ({
  name: `shop/${name}`,
  value: {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'shop' },
    spec: { targetRefs: [{ kind: 'Service', group: '', name: 'web' }], ...spec },
  },
});

const mesh = (spec: Record<string, unknown>) => ({
  name: 'default',
  value: { apiVersion: 'ambit.dev/v1alpha1', kind: 'MeshConfig', metadata: { name: 'default' }, spec },
});

describe('waypoint state', () => {
  test('policies and MeshConfig land in their fields; a bad one is refused whole', () => {
    const s = new WaypointState();
    s.apply(TYPE.waypointAuthorization, { upserts: [ap('a', { action: 'DENY', rules: [{}] })], removed: [] });
    s.apply(TYPE.meshConfig, {
      upserts: [
        mesh({
          extensionProviders: [{ name: 'authz', envoyExtAuthzHttp: { service: '198.18.1.9', port: 9000 } }],
        }),
      ],
      removed: [],
    });
    assert.deepEqual([...s.snapshot.authorizationPolicies.keys()], ['shop/a']);
    assert.equal(s.snapshot.meshConfig?.spec.extensionProviders?.[0]?.name, 'authz');
    const before = s.snapshot;
    assert.throws(
      () =>
        s.apply(TYPE.waypointAuthorization, {
          upserts: [
            ap('b', { rules: [] }),
            ap('c', { rules: [{ to: [{ operation: { paths: ['/api/.*'] } }] }] }),
          ],
          removed: [],
        }),
      /AuthorizationPolicy "shop\/c" is invalid: .*regular expression/,
    );
    assert.equal(s.snapshot, before, 'the last good state stays');
    s.apply(TYPE.meshConfig, { upserts: [], removed: ['default'] });
    assert.equal(s.snapshot.meshConfig, undefined);
    assert.throws(() => s.apply('ambit.dev/Unknown', { upserts: [], removed: [] }), /unknown resource type/);
  });

  test("the control plane's root namespace replaces Istio's default", () => {
    const s = new WaypointState();
    assert.equal(s.snapshot.meshSettings.rootNamespace, 'istio-system');
    s.apply(TYPE.meshSettings, {
      upserts: [{ name: 'mesh', value: { rootNamespace: 'mesh-root', trustDomain: 'example.org' } }],
      removed: [],
    });
    assert.deepEqual(s.snapshot.meshSettings, { rootNamespace: 'mesh-root', trustDomain: 'example.org' });
    assert.throws(() =>
      s.apply(TYPE.meshSettings, { upserts: [{ name: 'mesh', value: { rootNamespace: '' } }], removed: [] }),
    );
    assert.equal(s.snapshot.meshSettings.rootNamespace, 'mesh-root');
  });
});
