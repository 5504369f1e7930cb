// Replicas on one etcd see each other (against a real etcd on loopback): one holds a duty at a time
// and another takes it over when the holder leaves or dies; each reports its proxies, which every
// replica's proxy-status then lists with the replica they are connected to; a report another writer
// garbled is skipped.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, type TestContext, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { storeChoice } from '../../../src/control/index.ts';
import { openEtcdStore, type Replicas, type ReportedProxy } from '../../../src/control/store/index.ts';
import { type EtcdMember, NO_ETCD, startEtcd } from '../../helpers/etcd.ts';
import { eventually } from '../../helpers/lab.ts';
import { adminFetch, joinNode, startTestControl, syncedZtunnelStream } from '../../helpers/mesh.ts';

const row = (name: string): ReportedProxy => ({
  id: `${name}-1`,
  kind: 'ztunnel',
  name,
  identity: `spiffe://cluster.local/ns/ambit-system/sa/ztunnel`,
  connectedAt: new Date(0).toISOString(),
  state: 'SYNCED',
  types: {},
});

/** Who holds the duty now, and whether two ever held it at once. */
class Holders extends Set<string> {
  overlapped = false;
}

async function replica(t: TestContext, etcd: EtcdMember, name: string, held: Holders) {
  const store = await openEtcdStore({ endpoints: [etcd.url], prefix: '/replicas-test' });
  const replicas = store.replicas({ name, grpc: `${name}:15010`, proxies: () => [row(`node-of-${name}`)] });
  replicas.lead('deployer', {
    start: () => {
      if (held.size > 0) held.overlapped = true;
      held.add(name);
    },
    stop: () => held.delete(name),
  });
  let open = true;
  const leave = async () => {
    if (!open) return;
    open = false;
    await replicas.close();
    await store.close();
  };
  t.after(leave);
  return { replicas, leave };
}

const STORE_INDEX = new URL('../../../src/control/store/index.ts', import.meta.url).href;
/** A replica named a in a process of its own: prints START a / STOP a as it gains and loses the duty. */
const REPLICA_PROCESS = `
const [index, url] = process.argv.slice(1);
const { openEtcdStore } = await import(index);
const store = await openEtcdStore({ endpoints: [url], prefix: '/replicas-test' });
const replicas = store.replicas({ name: 'a', grpc: 'a:15010', proxies: () => [] });
replicas.lead('deployer', { start: () => console.log('START a'), stop: () => console.log('STOP a') });
setInterval(() => {}, 60_000);
`;

const names = (r: { all(): Array<{ replica: string }> }) => r.all().map((x) => x.replica);

/** The replica `name`, seeing `replicas`, takes the duty and is the only replica left in its view. */
async function takesOver(held: Holders, replicas: Replicas, name: string, ms: number): Promise<void> {
  await eventually(async () => (held.has(name) ? true : undefined), ms, `${name} takes the duty`);
  await eventually(
    async () => (names(replicas).length === 1 ? true : undefined),
    ms,
    'the other report is gone',
  );
}

describe('control-plane replicas on etcd', { skip: NO_ETCD }, () => {
  test('one holds a duty; another takes it when it leaves; reports come and go with them', async (t) => {
    const etcd = await startEtcd(t);
    const held = new Holders();
    const a = await replica(t, etcd, 'a', held);
    const b = await replica(t, etcd, 'b', held);
    await eventually(async () => (held.size === 1 ? true : undefined), 10_000, 'a duty holder');
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(held.size, 1);
    assert.equal(held.overlapped, false, 'never two holders');
    await eventually(
      async () => (names(a.replicas).length === 2 && names(b.replicas).length === 2 ? true : undefined),
      10_000,
      'each sees both',
    );
    assert.deepEqual(names(a.replicas), ['a', 'b'], 'its own first');
    assert.deepEqual(names(b.replicas), ['b', 'a']);
    const fromB = b.replicas.all().find((r) => r.replica === 'a')!;
    assert.deepEqual(
      fromB.proxies.map((p) => p.name),
      ['node-of-a'],
    );
    assert.deepEqual(fromB.store, { kind: 'etcd', writable: true });
    assert.deepEqual(fromB.duties, held.has('a') ? ['deployer'] : []);

    const [holder, stays] = held.has('a') ? [a, b] : [b, a];
    const stayName = holder === a ? 'b' : 'a';
    await holder.leave();
    await takesOver(held, stays.replicas, stayName, 5_000);
  });

  test('a replica killed without a word loses its duty and report when its lease ends', async (t) => {
    const etcd = await startEtcd(t);
    // Replica a in a process of its own, killed with SIGKILL: nothing is resigned or revoked.
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', REPLICA_PROCESS, STORE_INDEX, etcd.url],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    await eventually(async () => (out.includes('START a') ? true : undefined), 10_000, 'a holds the duty');
    const held = new Holders();
    const b = await replica(t, etcd, 'b', held);
    await eventually(async () => (names(b.replicas).length === 2 ? true : undefined), 10_000, 'b sees a');
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(held.has('b'), false, 'b waits while a holds it');
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await takesOver(held, b.replicas, 'b', 15_000);
    t.diagnostic(
      `b took the duty and a's report was gone ${Date.now() - killedAt} ms after a was killed (lease TTL 5 s)`,
    );
  });

  test('a holder cut off from etcd gives the duty up before another can get it, and one holds it again after', async (t) => {
    const etcd = await startEtcd(t);
    const held = new Holders();
    await replica(t, etcd, 'a', held);
    await eventually(async () => (held.size === 1 ? true : undefined), 10_000, 'a holder');
    await replica(t, etcd, 'b', held);
    await etcd.stop();
    // Half the TTL (2.5 s) without a write, then the next failed tick.
    await eventually(async () => (held.size === 0 ? true : undefined), 6_000, 'the holder gives the duty up');
    await etcd.start();
    await eventually(async () => (held.size === 1 ? true : undefined), 20_000, 'a holder again');
    assert.equal(held.overlapped, false, 'never two holders');
  });

  test('a garbled report under the prefix is skipped', async (t) => {
    const etcd = await startEtcd(t);
    const raw = new Etcd3({ hosts: etcd.url });
    t.after(() => raw.close());
    await raw.put('/replicas-test-replicas/members/junk').value('{"replica": 42}');
    await raw.put('/replicas-test-replicas/members/notjson').value('nope');
    const a = await replica(t, etcd, 'a', new Holders());
    await replica(t, etcd, 'b', new Holders());
    await new Promise((r) => setTimeout(r, 2_500));
    assert.deepEqual(names(a.replicas), ['a', 'b'], "b's report is read, the junk is not");
  });

  test("every replica's proxy-status lists every proxy with the replica it is connected to", async (t) => {
    const etcd = await startEtcd(t);
    const store = await storeChoice({ store: 'etcd', etcdEndpoints: etcd.url, etcdPrefix: '/ps' });
    const a = await startTestControl(t, undefined, { store });
    const b = await startTestControl(t, undefined, { store });
    const cred = await joinNode(a, 'node-1');
    await syncedZtunnelStream(t, a, cred, 'node-1');
    const viewOf = async (cp: typeof a) =>
      (await (await adminFetch(cp, '/ambit/v1/proxies')).json()) as {
        items: Array<{ name: string; controlPlane: string }>;
      };
    await eventually(
      async () => {
        const { items } = await viewOf(b);
        return items.length === 1 && items[0]!.name === 'node-1' && items[0]!.controlPlane === a.replicas.self
          ? true
          : undefined;
      },
      10_000,
      "b lists a's proxy",
    );
    const replicas = (await (await adminFetch(b, '/ambit/v1/replicas')).json()) as {
      self: string;
      items: Array<{ replica: string; proxies: number; store: { writable: boolean } }>;
    };
    assert.equal(replicas.self, b.replicas.self);
    assert.deepEqual(
      replicas.items.map((r) => [r.replica, r.proxies, r.store.writable]).sort(),
      [
        [a.replicas.self, 1, true],
        [b.replicas.self, 0, true],
      ].sort(),
    );
  });
});
