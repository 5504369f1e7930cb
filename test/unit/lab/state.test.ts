import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import { ambitHome, type LabState, LabStore } from '../../../src/lab/state.ts';

async function tempHome(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'ambit-state-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  return home;
}

const state = (nodes: number): LabState => ({
  version: 1,
  name: 'lab',
  nodes,
  createdAt: new Date(0).toISOString(),
  nodeProcesses: {},
  hosts: [],
  pods: [],
});

describe('lab state', () => {
  test('AMBIT_HOME picks the data directory', () => {
    assert.equal(ambitHome({}), '/var/lib/ambit');
    assert.equal(ambitHome({ AMBIT_HOME: '/tmp/x' }), '/tmp/x');
  });

  test('round-trips and erases', async (t) => {
    const store = new LabStore(await tempHome(t), 'lab');
    assert.equal(await store.load(), undefined);
    await store.save(state(3));
    assert.deepEqual(await store.load(), state(3));
    await store.erase();
    assert.equal(await store.load(), undefined);
  });

  test('a corrupt or foreign file is an error that says how to recover', async (t) => {
    const home = await tempHome(t);
    const store = new LabStore(home, 'lab');
    await mkdir(store.dir, { recursive: true });
    for (const text of [
      '{not json',
      JSON.stringify({ version: 2 }),
      JSON.stringify({ ...state(2), nodes: -1 }),
    ]) {
      await writeFile(join(store.dir, 'state.json'), text);
      await assert.rejects(
        store.load(),
        (err) => hasCode(err, 'AMBIT_ERR_LAB_STATE_CORRUPT') && /lab down/.test(err.message),
      );
    }
  });

  test('the lock serialises concurrent changes', async (t) => {
    const store = new LabStore(await tempHome(t), 'lab');
    await store.save(state(1));
    const bump = () =>
      store.withLock(async () => {
        const s = (await store.load())!;
        await new Promise((r) => setTimeout(r, 20));
        await store.save({ ...s, nodes: s.nodes + 1 });
      });
    await Promise.all(Array.from({ length: 5 }, bump));
    assert.equal((await store.load())?.nodes, 6);
  });

  test('a lock left by a killed process goes stale and is taken over', async (t) => {
    const store = new LabStore(await tempHome(t), 'lab');
    await mkdir(`${store.dir}.lock`, { recursive: true });
    const old = new Date(Date.now() - 60_000);
    await utimes(`${store.dir}.lock`, old, old);
    assert.equal(await store.withLock(async () => 'taken'), 'taken');
  });
});
