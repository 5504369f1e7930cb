// Property tests of the embedded store's recovery (src/control/store/embedded.ts): what a crash can
// leave at the end of wal.jsonl is dropped and exactly the acknowledged records come back; damage
// anywhere else is reported as AMBIT_ERR_STORE_CORRUPT and the files are left as they were.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { EmbeddedStore } from '../../src/control/store/index.ts';
import { hasCode } from '../../src/errors/index.ts';
import { storedNamespace } from '../helpers/store.ts';

const CORRUPT = 'AMBIT_ERR_STORE_CORRUPT';
const RECORDS = 6;

const ns = storedNamespace;

/** The state a store holds, comparable with deepEqual. */
const stateOf = (store: EmbeddedStore) => ({
  rev: store.revision,
  items: store
    .list()
    .map((r) => JSON.stringify(r))
    .sort(),
});

/** A log of RECORDS commits, its line boundaries, and the state after each prefix of it. */
let wal: Buffer;
let lineStarts: number[]; // lineStarts[i] = offset of line i; lineStarts[RECORDS] = wal.length
let states: ReturnType<typeof stateOf>[]; // states[k] = after the first k records

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambit-store-prop-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a store on exactly `log` (and no snapshot); returns its state, or the error it refused with. */
async function recover(dir: string, log: Uint8Array, snapshot?: string) {
  await writeFile(join(dir, 'wal.jsonl'), log);
  await rm(join(dir, 'snapshot.json'), { force: true });
  if (snapshot !== undefined) await writeFile(join(dir, 'snapshot.json'), snapshot);
  let store: EmbeddedStore;
  try {
    store = await EmbeddedStore.open(dir);
  } catch (err) {
    return { error: err };
  }
  try {
    return { state: stateOf(store), store };
  } finally {
    await store.close();
  }
}

const withoutNewline = (bytes: Uint8Array) => bytes.filter((b) => b !== 0x0a);

describe('store log recovery (property)', () => {
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambit-store-prop-base-'));
    try {
      const store = await EmbeddedStore.open(dir);
      states = [stateOf(store)];
      // Content that exercises JSON escaping and multi-byte UTF-8.
      const texts = [
        'plain',
        'quote " and \\ backslash',
        'new\nline',
        'é ü 漢字 🚀',
        '{"crc":1}',
        ',"crc":7}',
      ];
      for (let i = 0; i < RECORDS; i++) {
        await store.commit((s) =>
          i === 3
            ? [{ op: 'delete', key: 'Namespace/n1', previous: s.get('Namespace/n1')! }]
            : [
                { op: 'put', resource: ns(`n${i}`, { i: String(i) }, { note: texts[i]! }) },
                { op: 'put', resource: ns(`m${i}`, {}, { crc: texts[(i + 1) % texts.length]! }) },
              ],
        );
        states.push(stateOf(store));
      }
      await store.close();
      wal = await readFile(join(dir, 'wal.jsonl'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    lineStarts = [0];
    for (let i = 0; i < wal.length; i++) if (wal[i] === 0x0a) lineStarts.push(i + 1);
    assert.equal(lineStarts.length, RECORDS + 1);
  });

  const line = (i: number) => wal.subarray(lineStarts[i]!, lineStarts[i + 1]! - 1); // without its newline

  test('a torn tail after acknowledged records: exactly those records come back, and the log keeps working', async (t) => {
    const dir = await tempDir(t);
    const torn = fc.oneof(
      // a prefix of the next record (the crash cut the write short; it may even lack only its newline)
      fc.tuple(fc.nat(RECORDS - 1), fc.nat()).map(([i, n]) => line(i).subarray(0, 1 + (n % line(i).length))),
      // what the disk held where the file grew but the data never landed
      fc.integer({ min: 1, max: 300 }).map((n) => new Uint8Array(n)),
      fc
        .uint8Array({ minLength: 1, maxLength: 300 })
        .map(withoutNewline)
        .filter((b) => b.length > 0),
      // a whole record with some of its pages lost: damaged, but ending in its newline
      fc
        .tuple(
          fc.nat(RECORDS - 1),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        )
        .map(([i, hits]) => {
          const bytes = Buffer.from(line(i));
          for (const [at, b] of hits) {
            const p = at % bytes.length;
            bytes[p] = b === 0x0a || b === bytes[p] ? bytes[p]! ^ 0x01 || 0x20 : b;
            if (bytes[p] === 0x0a) bytes[p] = 0x0b;
          }
          return Buffer.concat([bytes, Buffer.from('\n')]);
        }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: RECORDS }), torn, async (k, tail) => {
        const log = Buffer.concat([wal.subarray(0, lineStarts[k]), tail]);
        const got = await recover(dir, log);
        if (got.error) throw got.error;
        assert.deepEqual(got.state, states[k]);
        assert.equal(
          (await readFile(join(dir, 'wal.jsonl'))).length,
          lineStarts[k],
          'the torn tail is cut off',
        );
        // The next commit lands on a clean end and survives the next start.
        const store = await EmbeddedStore.open(dir);
        await store.commit(() => [{ op: 'put', resource: ns('after', {}, {}) }]);
        await store.close();
        const again = await recover(dir, await readFile(join(dir, 'wal.jsonl')));
        assert.equal(again.state?.rev, k + 1);
      }),
      { numRuns: 100 },
    );
  });

  test('a damaged byte in an acknowledged record is reported as corruption and changes nothing', async (t) => {
    const dir = await tempDir(t);
    // k records, one byte changed anywhere before the last record (its newline included).
    const damage = fc
      .integer({ min: 2, max: RECORDS })
      .chain((k) =>
        fc.tuple(fc.constant(k), fc.nat(lineStarts[k - 1]! - 1), fc.integer({ min: 0, max: 255 })),
      );
    await fc.assert(
      fc.asyncProperty(damage, async ([k, p, b]) => {
        const log = Buffer.from(wal.subarray(0, lineStarts[k]));
        if (log[p] === b) return;
        log[p] = b;
        const got = await recover(dir, log);
        assert.ok(
          hasCode(got.error, CORRUPT),
          `byte ${p} of ${k} records set to ${b}: ${got.error ?? 'accepted'}`,
        );
        assert.deepEqual(await readFile(join(dir, 'wal.jsonl')), log, 'the log is left as it was');
      }),
      { numRuns: 300 },
    );
  });

  test('a damaged byte in the last record: it is dropped as torn or reported, never read back changed', async (t) => {
    const dir = await tempDir(t);
    const damage = fc
      .integer({ min: 1, max: RECORDS })
      .chain((k) =>
        fc.tuple(
          fc.constant(k),
          fc.integer({ min: lineStarts[k - 1]!, max: lineStarts[k]! - 2 }),
          fc.integer({ min: 0, max: 255 }),
        ),
      );
    await fc.assert(
      fc.asyncProperty(damage, async ([k, p, b]) => {
        const log = Buffer.from(wal.subarray(0, lineStarts[k]));
        if (log[p] === b) return;
        log[p] = b;
        const got = await recover(dir, log);
        if (got.error) assert.ok(hasCode(got.error, CORRUPT), String(got.error));
        else assert.deepEqual(got.state, states[k - 1]);
      }),
      { numRuns: 200 },
    );
  });

  test('after a failed write that cannot be cut back, nothing more is acknowledged', async (t) => {
    const dir = await tempDir(t);
    const store = await EmbeddedStore.open(dir);
    t.after(() => store.close());
    await store.commit(() => [{ op: 'put', resource: ns('a', {}, {}) }]);
    // The disk takes half a record, then refuses to cut it back: the log now ends mid-record.
    const handle = (store as unknown as { wal: import('node:fs/promises').FileHandle }).wal;
    const { write, truncate } = handle;
    const halfWrite = async (buf: Buffer) => {
      await (write as (b: Buffer) => Promise<unknown>).call(handle, buf.subarray(0, buf.length >> 1));
      throw new Error('EIO');
    };
    handle.write = halfWrite as unknown as typeof handle.write;
    handle.truncate = (async () => {
      throw new Error('EIO');
    }) as typeof handle.truncate;
    await assert.rejects(
      store.commit(() => [{ op: 'put', resource: ns('b', {}, {}) }]),
      (e) => hasCode(e, 'AMBIT_ERR_STORE_WRITE'),
    );
    handle.write = write;
    handle.truncate = truncate;
    // Appending now would glue the next record to the torn one and lose it at the next start.
    await assert.rejects(
      store.commit(() => [{ op: 'put', resource: ns('c', {}, {}) }]),
      (e) => hasCode(e, 'AMBIT_ERR_STORE_WRITE'),
    );
    await store.close();
    const again = await EmbeddedStore.open(dir);
    t.after(() => again.close());
    assert.deepEqual(
      again.list().map((r) => r.key),
      ['Namespace/a'],
    );
  });

  test('arbitrary JSON where a record should be, or as the snapshot, is refused with a code, never a crash', async (t) => {
    const dir = await tempDir(t);
    const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null');
    await fc.assert(
      fc.asyncProperty(json, fc.boolean(), async (text, asSnapshot) => {
        const got = asSnapshot
          ? await recover(dir, wal, text)
          : await recover(dir, Buffer.concat([Buffer.from(`${text}\n`), wal]));
        if (got.error) assert.ok(hasCode(got.error, CORRUPT), String(got.error));
      }),
      { numRuns: 200 },
    );
  });
});
