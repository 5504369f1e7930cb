import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { EmbeddedStore } from '../../../src/control/store/index.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { storedNamespace } from '../../helpers/store.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const ns = (name: string, label = 'a') => storedNamespace(name, { l: label });

describe('embedded store', () => {
  test('a lost data-directory lock refuses commits instead of crashing the process', async (t) => {
    const dir = await tempDir(t);
    const store = await EmbeddedStore.open(dir);
    t.after(() => store.close());
    await store.commit(() => [{ op: 'put', resource: ns('before') }]);
    // Someone removes the lock (a cleanup, another tool): its next refresh fails.
    await rm(join(dir, 'store.lock'), { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 2_500));
    await assert.rejects(
      store.commit(() => [{ op: 'put', resource: ns('after') }]),
      (e) => hasCode(e, 'AMBIT_ERR_STORE_LOCK_LOST'),
    );
    assert.ok(store.get('Namespace/before'), 'reads keep serving');
  });

  test('commits atomically, stamps revisions, and survives reopen', async (t) => {
    const dir = await tempDir(t);
    const store = await EmbeddedStore.open(dir);
    const seen: number[] = [];
    store.watch((rev) => seen.push(rev));
    await store.commit(() => [
      { op: 'put', resource: ns('a') },
      { op: 'put', resource: ns('b') },
    ]);
    await store.commit((s) => [{ op: 'delete', key: 'Namespace/a', previous: s.get('Namespace/a')! }]);
    assert.equal(store.revision, 2);
    assert.deepEqual(seen, [1, 2]);
    assert.equal(store.get('Namespace/b')?.object.metadata.resourceVersion, '1');
    await store.close();
    const again = await EmbeddedStore.open(dir);
    t.after(() => again.close());
    assert.equal(again.revision, 2);
    assert.deepEqual(
      again.list().map((r) => r.key),
      ['Namespace/b'],
    );
  });

  test('a build that throws commits nothing; concurrent commits serialise', async (t) => {
    const store = await EmbeddedStore.open(await tempDir(t));
    t.after(() => store.close());
    await assert.rejects(
      store.commit(() => {
        throw new Error('refused');
      }),
      /refused/,
    );
    assert.equal(store.revision, 0);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.commit(() => [{ op: 'put', resource: ns(`n${i}`) }])),
    );
    assert.equal(store.revision, 20);
    assert.equal(store.list().length, 20);
  });

  test('compaction keeps everything; a torn last record is dropped on recovery', async (t) => {
    const dir = await tempDir(t);
    const store = await EmbeddedStore.open(dir, { compactEvery: 3 });
    for (let i = 0; i < 7; i++) await store.commit(() => [{ op: 'put', resource: ns(`n${i}`, String(i)) }]);
    await store.close();
    assert.match(await readFile(join(dir, 'snapshot.json'), 'utf8'), /"rev":6/);
    await appendFile(join(dir, 'wal.jsonl'), '{"rev":8,"changes":[{"op":"put"'); // a crash mid-write
    const again = await EmbeddedStore.open(dir, { compactEvery: 3 });
    assert.equal(again.revision, 7);
    assert.equal(again.list().length, 7);
    await again.commit(() => [{ op: 'put', resource: ns('after') }]);
    await again.close();
    const third = await EmbeddedStore.open(dir);
    t.after(() => third.close());
    assert.equal(third.revision, 8);
    assert.ok(third.get('Namespace/after'));
  });

  test('a last record without its newline is dropped, and later commits survive the next restart', async (t) => {
    const dir = await tempDir(t);
    const store = await EmbeddedStore.open(dir);
    await store.commit(() => [{ op: 'put', resource: ns('a') }]);
    await store.commit(() => [{ op: 'put', resource: ns('b') }]);
    await store.close();
    const wal = join(dir, 'wal.jsonl');
    const text = await readFile(wal, 'utf8');
    await writeFile(wal, text.slice(0, -1)); // the crash took the final newline: b was never acknowledged
    const again = await EmbeddedStore.open(dir);
    assert.deepEqual(
      again.list().map((r) => r.key),
      ['Namespace/a'],
    );
    await again.commit(() => [{ op: 'put', resource: ns('c') }]);
    await again.commit(() => [{ op: 'put', resource: ns('d') }]);
    await again.close();
    const third = await EmbeddedStore.open(dir);
    t.after(() => third.close());
    assert.deepEqual(
      third
        .list()
        .map((r) => r.key)
        .sort(),
      ['Namespace/a', 'Namespace/c', 'Namespace/d'],
    );
  });

  test('one writer per data directory', async (t) => {
    const dir = await tempDir(t);
    const first = await EmbeddedStore.open(dir);
    await assert.rejects(EmbeddedStore.open(dir), (e) => hasCode(e, 'AMBIT_ERR_STORE_LOCKED'));
    await first.close();
    const second = await EmbeddedStore.open(dir);
    await second.close();
  });

  test('a failed compaction does not fail the commit it follows', async (t) => {
    const dir = await tempDir(t);
    const store = await EmbeddedStore.open(dir, { compactEvery: 2 });
    t.after(() => store.close());
    await mkdir(join(dir, 'snapshot.json.tmp')); // the snapshot's temp file cannot be written
    await store.commit(() => [{ op: 'put', resource: ns('a') }]);
    await store.commit(() => [{ op: 'put', resource: ns('b') }]);
    await store.commit(() => [{ op: 'put', resource: ns('c') }]);
    assert.equal(store.revision, 3);
  });

  test('every acknowledged write survives kill -9 of the writer', async (t) => {
    const dir = await tempDir(t);
    // A child commits in a loop and prints each acknowledged revision; we kill -9 it mid-stream.
    const script = `
      import { EmbeddedStore } from ${JSON.stringify(join(import.meta.dirname, '../../../src/control/store/index.ts'))};
      const store = await EmbeddedStore.open(${JSON.stringify(dir)}, { compactEvery: 25 });
      for (let i = 0; ; i++) {
        const key = 'Namespace/n' + i;
        const r = await store.commit(() => [{ op: 'put', resource: { key, rev: 0, object: { kind: 'Namespace', metadata: { name: 'n' + i } } } }]);
        process.stdout.write(r.rev + '\\n');
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let acked = 0;
    let buf = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) acked = Math.max(acked, Number(l));
        if (acked >= 60) {
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => child.on('exit', r));
    const store = await EmbeddedStore.open(dir);
    t.after(() => store.close());
    assert.ok(store.revision >= acked, `recovered revision ${store.revision} < acknowledged ${acked}`);
    for (let i = 0; i < acked; i++) assert.ok(store.get(`Namespace/n${i}`), `n${i} lost`);
  });
});
