// The labels a ztunnel counts a connection under: a client that shares its service account (so its
// identity) with other pods is named by the address its tunnel proved, as Istio's ztunnel names it.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TYPE } from '../../../src/xds/index.ts';
import { hboneLabels, sourceLabels } from '../../../src/ztunnel/labels.ts';
import { ZtunnelState } from '../../../src/ztunnel/state.ts';
import { workloadFixture } from '../../helpers/workloads.ts';

const SHARED = 'spiffe://cluster.local/ns/shop/sa/catalog';

describe('connection labels', () => {
  const state = new ZtunnelState();
  state.apply(TYPE.workload, {
    upserts: [
      workloadFixture('catalog-v1', '198.18.1.3', { identity: SHARED }),
      workloadFixture('catalog-v2', '198.18.1.4', { identity: SHARED }),
      workloadFixture('ratings', '198.18.2.3'),
    ].map((w) => ({ name: w.uid, value: w })),
    removed: [],
  });
  const s = state.snapshot;

  test('the proven address names the client; without one, its identity does', () => {
    assert.equal(sourceLabels(s, SHARED, '198.18.1.4').source_workload, 'catalog-v2');
    assert.equal(sourceLabels(s, SHARED, '198.18.1.3').source_workload, 'catalog-v1');
    assert.equal(sourceLabels(s, SHARED).source_workload, 'catalog-v1', 'one of the pods running as it');
    assert.equal(sourceLabels(s, undefined, '198.18.9.9').source_workload, undefined, 'unknown plaintext');
  });

  test('an HBONE connection is counted under the workload its tunnel proved', () => {
    const labels = hboneLabels(s, SHARED, '198.18.2.3:8080', '-', '198.18.1.4');
    assert.equal(labels.source_workload, 'catalog-v2');
    assert.equal(labels.source_principal, SHARED);
    assert.equal(labels.destination_workload, 'ratings');
  });
});
