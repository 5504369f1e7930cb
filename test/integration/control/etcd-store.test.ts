// The etcd store against a real etcd on loopback: commits, two replicas on one prefix (each sees the
// other's writes; racing commits never lose one), a watch that fell behind compaction (a relist), etcd
// down at start and mid-run (clear errors, reads keep serving, recovery without a restart).

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { type EtcdStore, type EtcdStoreOptions, openEtcdStore } from '../../../src/control/store/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { freePort } from '../../helpers/ports.ts';
import { storedNamespace } from '../../helpers/store.ts';

const ns = (name: string, label = 'a') => storedNamespace(name, { l: label });

async function open(t: TestContext, url: string, more: Partial<EtcdStoreOptions> = {}) {
  const store = await openEtcdStore({ endpoints: [url], prefix: '/test', requestTimeoutMs: 2_000, ...more });
  t.after(() => store.close());
  return store;
}

/** Polls until `check` holds; fails after `ms` (generous: no timing is asserted, a hang is). */
async function until(check: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not so after ${ms} ms: ${check.toString()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const label = (s: EtcdStore, name: string) =>
  (s.get(`Namespace/${name}`)?.object.metadata.labels as Record<string, string> | undefined)?.l;

describe('etcd store', { skip: NO_ETCD }, () => {
  test('commits atomically, stamps revisions from etcd, tells listeners, and reopens with everything', async (t) => {
    const etcd = await startEtcd(t);
    const store = await open(t, etcd.url);
    const seen: Array<[number, string[]]> = [];
    store.watch((rev, changes) =>
      seen.push([rev, changes.map((c) => (c.op === 'put' ? `put ${c.resource.key}` : `delete ${c.key}`))]),
    );
    const first = await store.commit(() => [
      { op: 'put', resource: ns('a') },
      { op: 'put', resource: ns('b') },
    ]);
    assert.equal(store.get('Namespace/a')?.object.metadata.resourceVersion, String(first.rev));
    assert.equal(store.revision, first.rev);
    const second = await store.commit((s) => [
      { op: 'delete', key: 'Namespace/a', previous: s.get('Namespace/a')! },
    ]);
    assert.ok(second.rev > first.rev);
    assert.deepEqual(seen, [
      [first.rev, ['put Namespace/a', 'put Namespace/b']],
      [second.rev, ['delete Namespace/a']],
    ]);
    assert.deepEqual((await store.commit(() => [])).changes, [], 'nothing to change: nothing written');
    await store.close();
    const again = await open(t, etcd.url);
    assert.deepEqual(
      again.list().map((r) => r.key),
      ['Namespace/b'],
    );
    assert.equal(again.get('Namespace/b')?.object.metadata.resourceVersion, String(first.rev));
    await assert.rejects(
      store.commit(() => [{ op: 'put', resource: ns('c') }]),
      (e) => hasCode(e, 'AMBIT_ERR_STORE_CLOSED'),
    );
  });

  test('a build that throws commits nothing', async (t) => {
    const etcd = await startEtcd(t);
    const store = await open(t, etcd.url);
    await assert.rejects(
      store.commit(() => {
        throw new Error('refused');
      }),
      /refused/,
    );
    assert.equal(store.list().length, 0);
  });

  test('two replicas on one prefix: each sees the other, and racing commits lose nothing', async (t) => {
    const etcd = await startEtcd(t);
    const a = await open(t, etcd.url);
    const b = await open(t, etcd.url);
    await a.commit(() => [{ op: 'put', resource: ns('counter', '0') }]);
    await until(() => label(b, 'counter') === '0');
    // Each commit reads the counter and writes it plus one: a lost update would leave it short.
    const bump = (s: EtcdStore) =>
      s.commit((view) => [
        { op: 'put', resource: ns('counter', String(Number(label(view as EtcdStore, 'counter')) + 1)) },
      ]);
    await Promise.all(Array.from({ length: 10 }, (_, i) => bump(i % 2 === 0 ? a : b)));
    await until(() => label(a, 'counter') === '10' && label(b, 'counter') === '10');
    assert.equal(a.revision, b.revision);
    // A prefix is one store: another prefix is another.
    const other = await open(t, etcd.url, { prefix: '/other' });
    assert.equal(other.list().length, 0);
  });

  test('a watch that fell behind compaction relists, and listeners hear the difference', async (t) => {
    const etcd = await startEtcd(t);
    const a = await open(t, etcd.url);
    const b = await open(t, etcd.url);
    await a.commit(() => [{ op: 'put', resource: ns('gone') }]);
    await until(() => b.get('Namespace/gone') !== undefined);
    // B stops following (as if partitioned); meanwhile A writes and etcd compacts those revisions away.
    const internals = b as unknown as { watcher?: { cancel(): Promise<void> }; follow(): void };
    const w = internals.watcher;
    internals.watcher = undefined;
    await w?.cancel();
    await a.commit((s) => [{ op: 'delete', key: 'Namespace/gone', previous: s.get('Namespace/gone')! }]);
    const last = await a.commit(() => [{ op: 'put', resource: ns('new') }]);
    const raw = new Etcd3({ hosts: etcd.url });
    t.after(() => raw.close());
    await raw.kv.compact({ revision: String(last.rev), physical: true });
    const heard: string[] = [];
    b.watch((_rev, changes) =>
      heard.push(...changes.map((c) => (c.op === 'put' ? `put ${c.resource.key}` : `delete ${c.key}`))),
    );
    internals.follow(); // resumes from a compacted revision: etcd cancels the watch
    await until(() => b.get('Namespace/new') !== undefined && b.get('Namespace/gone') === undefined);
    assert.deepEqual(heard.sort(), ['delete Namespace/gone', 'put Namespace/new']);
    await a.commit(() => [{ op: 'put', resource: ns('after') }]);
    await until(() => b.get('Namespace/after') !== undefined);
  });

  test('etcd down at start: a clear error after retrying; down mid-run: writes refused, reads serve, recovery', async (t) => {
    const etcd = await startEtcd(t);
    await etcd.stop();
    await assert.rejects(open(t, etcd.url, { startTimeoutMs: 1_000 }), (e) => {
      assert.ok(hasCode(e, 'AMBIT_ERR_STORE_UNAVAILABLE'), String(e));
      assert.match((e as Error).message, new RegExp(`cannot open the store: etcd at ${etcd.url}`));
      return true;
    });
    await etcd.start();
    const store = await open(t, etcd.url);
    await store.commit(() => [{ op: 'put', resource: ns('kept') }]);
    await etcd.stop();
    await assert.rejects(
      store.commit(() => [{ op: 'put', resource: ns('refused') }]),
      (e) => hasCode(e, 'AMBIT_ERR_STORE_UNAVAILABLE'),
    );
    assert.ok(store.get('Namespace/kept'), 'reads keep serving from the mirror');
    await etcd.start();
    // Recovery without a restart: the store writes again once etcd answers (within a few seconds).
    for (;;) {
      const done = await store
        .commit(() => [{ op: 'put', resource: ns('later') }])
        .then(
          () => true,
          (e) => {
            assert.ok(hasCode(e, 'AMBIT_ERR_STORE_UNAVAILABLE'), String(e));
            return false;
          },
        );
      if (done) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const other = await open(t, etcd.url);
    await until(() => other.get('Namespace/kept') !== undefined);
    assert.equal(other.get('Namespace/refused'), undefined, 'a refused write was not made');
    // The first replica's watch resumed too: it sees the other's writes.
    await other.commit(() => [{ op: 'put', resource: ns('from-other') }]);
    await until(
      () => store.get('Namespace/from-other') !== undefined && other.get('Namespace/later') !== undefined,
    );
  });

  test('a key under the prefix that is not a resource is skipped, not fatal', async (t) => {
    const etcd = await startEtcd(t);
    const raw = new Etcd3({ hosts: etcd.url });
    t.after(() => raw.close());
    await raw.put('/test/resources/Namespace/junk').value('not json');
    const store = await open(t, etcd.url);
    assert.equal(store.list().length, 0);
    await raw.put('/test/resources/Namespace/junk2').value('[1,2]');
    await store.commit(() => [{ op: 'put', resource: ns('real') }]);
    assert.deepEqual(
      store.list().map((r) => r.key),
      ['Namespace/real'],
    );
  });

  test('a refusal decided on a lagging view is decided again on the newest one', async (t) => {
    const etcd = await startEtcd(t);
    const a = await open(t, etcd.url);
    const b = await open(t, etcd.url);
    // B acts on what A wrote an instant before, 20 times: B's view may not hold it yet.
    for (let i = 0; i < 20; i++) {
      await a.commit(() => [{ op: 'put', resource: ns(`issued-${i}`) }]);
      await b.commit((view) => {
        if (!view.get(`Namespace/issued-${i}`)) throw new Error(`issued-${i} is unknown`);
        return [{ op: 'put', resource: ns(`issued-${i}`, 'spent') }];
      });
    }
  });

  test('a change larger than one etcd transaction is refused, naming the limit', async (t) => {
    const etcd = await startEtcd(t);
    const store = await open(t, etcd.url);
    await assert.rejects(
      store.commit(() =>
        Array.from({ length: 200 }, (_, i) => ({ op: 'put' as const, resource: ns(`n${i}`) })),
      ),
      (e) => {
        assert.ok(hasCode(e, 'AMBIT_ERR_STORE_TOO_LARGE'), String(e));
        assert.match((e as Error).message, /writes 200 resources .* at most 128 operations .*--max-txn-ops/);
        return true;
      },
    );
    assert.equal(store.list().length, 0);
  });

  test('a watch cut again right after it reconnected still delivers what it missed', async (t) => {
    const etcd = await startEtcd(t);
    // A TCP relay on loopback in front of etcd, which the test cuts at will.
    const target = Number(new URL(etcd.url).port);
    const port = await freePort();
    const sockets = new Set<net.Socket>();
    let accepting = true;
    const relay = net.createServer((c) => {
      if (!accepting) return c.destroy();
      const u = net.connect(target, '127.0.0.1');
      const end = () => {
        c.destroy();
        u.destroy();
        sockets.delete(c);
        sockets.delete(u);
      };
      sockets.add(c);
      sockets.add(u);
      c.pipe(u);
      u.pipe(c);
      for (const s of [c, u]) {
        s.on('error', end);
        s.on('close', end);
      }
    });
    await new Promise<void>((r) => relay.listen(port, '127.0.0.1', r));
    t.after(() => relay.close());
    const cut = () => {
      accepting = false;
      for (const s of sockets) s.destroy();
    };
    const b = await open(t, etcd.url);
    const a = await open(t, `http://127.0.0.1:${port}`);
    await b.commit(() => [{ op: 'put', resource: ns('first') }]);
    await until(() => a.get('Namespace/first') !== undefined);
    const watcher = (a as unknown as { watcher: NodeJS.EventEmitter }).watcher;
    const dropped = new Promise((r) => watcher.once('disconnected', r));
    cut();
    await dropped;
    await b.commit(() => [{ op: 'put', resource: ns('gap1') }]);
    await b.commit(() => [{ op: 'put', resource: ns('gap2') }]);
    // Cut again the moment etcd says the watch is back, before it sends what was missed.
    watcher.once('connected', () => {
      cut();
      setTimeout(() => {
        accepting = true;
      }, 300);
    });
    accepting = true;
    await b.commit(() => [{ op: 'put', resource: ns('after') }]);
    await until(() => a.get('Namespace/after') !== undefined);
    assert.ok(a.get('Namespace/gap1') && a.get('Namespace/gap2'), 'nothing written in between was lost');
  });
});
