// The config stream's per-proxy state machine, without sockets: subscribe, ACK, NACK, incremental
// pushes, coalescing while a response is in flight, and resync from the versions a proxy holds.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  changesBetween,
  type DeltaResponse,
  type Snapshot,
  StreamSession,
  TYPE,
  typeSnapshot,
} from '../../../src/xds/index.ts';

function snap(version: number, workloads: Record<string, unknown>): Snapshot {
  return {
    version: String(version),
    types: new Map([[TYPE.workload, typeSnapshot(Object.entries(workloads))]]),
  };
}

function session(first: Snapshot) {
  const sent: DeltaResponse[] = [];
  const s = new StreamSession('p1', first, (r) => sent.push(r));
  const names = (r: DeltaResponse | undefined) => r?.resources.map((x) => x.name).sort();
  return { s, sent, names, last: () => sent.at(-1)! };
}

describe('config stream session', () => {
  test('subscribe gets everything; ACK; then only what changed', () => {
    const { s, sent, names, last } = session(snap(1, { a: 1, b: 2 }));
    s.onRequest({ node: { kind: 'ztunnel', name: 'node-1' }, typeUrl: TYPE.workload });
    assert.equal(sent.length, 1);
    assert.deepEqual(names(last()), ['a', 'b']);
    assert.equal(s.status().state, 'STALE');
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce });
    assert.equal(s.status().state, 'SYNCED');
    assert.equal(s.status().types[TYPE.workload]?.resources, 2);

    s.onSnapshot(snap(2, { a: 1, b: 3, c: 4 }));
    assert.deepEqual(names(last()), ['b', 'c']);
    assert.deepEqual(last().removedResources, []);
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce });
    s.onSnapshot(snap(3, { b: 3, c: 4 }));
    assert.deepEqual(last().resources, []);
    assert.deepEqual(last().removedResources, ['a']);
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce });

    // A snapshot that changes nothing for this type sends nothing but counts as synced.
    const before = sent.length;
    s.onSnapshot(snap(4, { b: 3, c: 4 }));
    assert.equal(sent.length, before);
    assert.equal(s.status().state, 'SYNCED');
  });

  test('changes while a response is in flight are coalesced into one push', () => {
    const { s, sent, names, last } = session(snap(1, { a: 1 }));
    s.onRequest({ typeUrl: TYPE.workload });
    const firstNonce = last().nonce;
    for (let v = 2; v <= 50; v++) s.onSnapshot(snap(v, { a: v, [`n${v}`]: v }));
    assert.equal(sent.length, 1, 'nothing more is sent before the ACK');
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: firstNonce });
    assert.equal(sent.length, 2);
    assert.deepEqual(names(last()), ['a', 'n50']);
    assert.equal(last().systemVersionInfo, '50');
  });

  test('NACK keeps the last good state, records the error, and is not resent until something changes', () => {
    const { s, sent, names, last } = session(snap(1, { a: 1 }));
    s.onRequest({ typeUrl: TYPE.workload });
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce });
    s.onSnapshot(snap(2, { a: 1, bad: 'x' }));
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce, errorDetail: 'bad: not a workload' });
    const st = s.status();
    assert.equal(st.state, 'NACKED');
    assert.deepEqual(st.types[TYPE.workload]?.nack, { version: '2', error: 'bad: not a workload' });
    assert.equal(st.types[TYPE.workload]?.ackedVersion, '1');
    const count = sent.length;
    s.onSnapshot(snap(2, { a: 1, bad: 'x' })); // same version again: not resent
    assert.equal(sent.length, count);
    s.onSnapshot(snap(3, { a: 1, good: 'y' }));
    assert.deepEqual(names(last()), ['good'], 'the diff is against the last ACKed state');
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce });
    assert.equal(s.status().state, 'SYNCED');
  });

  test('a stale or unknown nonce is ignored', () => {
    const { s, sent, last } = session(snap(1, { a: 1 }));
    s.onRequest({ typeUrl: TYPE.workload });
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: 'nope' });
    assert.equal(s.status().state, 'STALE');
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce });
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce }); // duplicate ACK
    assert.equal(sent.length, 1);
    assert.equal(s.status().state, 'SYNCED');
  });

  test('reconnect: the proxy says what it holds and gets only the difference', () => {
    const current = snap(7, { a: 1, b: 2, c: 3 });
    const held = typeSnapshot(Object.entries({ a: 1, b: 'old', gone: 0 }));
    const { s, names, last } = session(current);
    s.onRequest({
      typeUrl: TYPE.workload,
      initialResourceVersions: Object.fromEntries([...held].map(([n, r]) => [n, r.version])),
    });
    assert.deepEqual(names(last()), ['b', 'c']);
    assert.deepEqual(last().removedResources, ['gone']);
  });

  test('a proxy at the previous snapshot gets the precomputed change; one behind gets a full diff', () => {
    const s1 = snap(1, { a: 1, b: 2, c: 3 });
    const types2 = snap(2, { a: 1, b: 20, d: 4 }).types;
    const s2: Snapshot = {
      version: '2',
      types: types2,
      previous: { version: '1', changes: changesBetween(s1, types2) },
    };
    assert.deepEqual(s2.previous?.changes.get(TYPE.workload), { upserts: ['b', 'd'], removed: ['c'] });

    const synced = session(s1);
    synced.s.onRequest({ typeUrl: TYPE.workload });
    synced.s.onRequest({ typeUrl: TYPE.workload, responseNonce: synced.last().nonce });
    synced.s.onSnapshot(s2);
    assert.deepEqual(synced.names(synced.last()), ['b', 'd']);
    assert.deepEqual(synced.last().removedResources, ['c']);

    // A proxy still holding snapshot 0 (it NACKed 1) cannot use the 1→2 change: it gets a real diff.
    const behind = session(snap(0, { a: 1 }));
    behind.s.onRequest({ typeUrl: TYPE.workload });
    behind.s.onRequest({ typeUrl: TYPE.workload, responseNonce: behind.last().nonce });
    behind.s.onSnapshot(s1);
    behind.s.onRequest({ typeUrl: TYPE.workload, responseNonce: behind.last().nonce, errorDetail: 'no' });
    behind.s.onSnapshot(s2);
    assert.deepEqual(behind.names(behind.last()), ['b', 'd']);
    assert.deepEqual(behind.last().removedResources, []);
  });

  test('a proxy already up to date gets an empty first answer, so it knows it is synced', () => {
    const current = snap(3, { a: 1 });
    const { s, sent, last } = session(current);
    s.onRequest({
      typeUrl: TYPE.workload,
      initialResourceVersions: { a: current.types.get(TYPE.workload)!.get('a')!.version },
    });
    assert.equal(sent.length, 1);
    assert.deepEqual([last().resources, last().removedResources], [[], []]);
    s.onRequest({ typeUrl: TYPE.workload, responseNonce: last().nonce });
    assert.equal(s.status().state, 'SYNCED');
  });
});
