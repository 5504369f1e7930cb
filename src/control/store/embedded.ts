// The embedded store: resources in memory, made durable by a write-ahead log in the data directory.
// A commit is acknowledged only after its log record is fsynced, so `kill -9` never loses an
// acknowledged write; a record torn by a crash was never acknowledged and is dropped on recovery.
// The log is compacted into an atomically replaced snapshot once it grows.

import { type FileHandle, mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { AmbitError } from '../../errors/index.ts';
import { logger } from '../../log/index.ts';
import type { Change, Store, StoredResource, StoreListener } from './types.ts';

const log = logger('store');

interface WalRecord {
  rev: number;
  changes: Change[];
}

interface Snapshot {
  rev: number;
  resources: StoredResource[];
}

export interface EmbeddedStoreOptions {
  /** Compact the log into the snapshot after this many records. */
  compactEvery?: number;
}

export class EmbeddedStore implements Store {
  private readonly items = new Map<string, StoredResource>();
  private readonly listeners = new Set<StoreListener>();
  private rev = 0;
  private walRecords = 0;
  private unlock: (() => Promise<void>) | undefined;
  /** Size of the log's acknowledged records: a failed write is cut back to this. */
  private walBytes = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private readonly dir: string;
  private readonly wal: FileHandle;
  private readonly compactEvery: number;

  private constructor(dir: string, wal: FileHandle, compactEvery: number) {
    this.dir = dir;
    this.wal = wal;
    this.compactEvery = compactEvery;
  }

  /** Opens (creating when absent) the store in `dir`, replaying snapshot and log. */
  static async open(dir: string, opts: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // One writer per data directory: a second control plane on it would interleave its log with ours.
    let unlock: () => Promise<void>;
    try {
      unlock = await lockfile.lock(dir, {
        lockfilePath: join(dir, 'store.lock'),
        realpath: false,
        stale: 3_000,
        update: 1_000,
        retries: { retries: 20, minTimeout: 100, maxTimeout: 300 },
      });
    } catch (cause) {
      throw new AmbitError(
        'AMBIT_ERR_STORE_LOCKED',
        `another control plane is using the data directory ${dir}; stop it, or give this one its own --data-dir`,
        { cause },
      );
    }
    try {
      const snapshot = await readSnapshot(join(dir, 'snapshot.json'));
      const walPath = join(dir, 'wal.jsonl');
      const wal = await open(walPath, 'a+', 0o600);
      const store = new EmbeddedStore(dir, wal, opts.compactEvery ?? 1_000);
      store.unlock = unlock;
      for (const r of snapshot.resources) store.items.set(r.key, r);
      store.rev = snapshot.rev;
      await store.replay(walPath);
      log.info({ dir, revision: store.rev, resources: store.items.size }, 'store opened');
      return store;
    } catch (err) {
      await unlock().catch(() => {});
      throw err;
    }
  }

  get revision(): number {
    return this.rev;
  }

  list(): StoredResource[] {
    return [...this.items.values()];
  }

  get(key: string): StoredResource | undefined {
    return this.items.get(key);
  }

  /**
   * Applies `changes` atomically and durably, after `check` (run under the store's write lock, so
   * it sees every earlier commit) has approved them. Returns the new revision.
   */
  commit(build: (store: Store) => Change[]): Promise<{ rev: number; changes: Change[] }> {
    const next = this.queue.then(async () => {
      if (this.closed) throw new AmbitError('AMBIT_ERR_STORE_CLOSED', 'the store is closed');
      const changes = build(this);
      if (changes.length === 0) return { rev: this.rev, changes };
      const rev = this.rev + 1;
      const stamped = changes.map((c) => (c.op === 'put' ? { ...c, resource: stamp(c.resource, rev) } : c));
      const line = Buffer.from(`${JSON.stringify({ rev, changes: stamped } satisfies WalRecord)}\n`);
      try {
        const { bytesWritten } = await this.wal.write(line);
        if (bytesWritten !== line.length)
          throw new Error(`short write: ${bytesWritten} of ${line.length} bytes (disk full?)`);
        await this.wal.sync();
      } catch (cause) {
        // Nothing was acknowledged: cut the log back, so no partial record is left for the next commit
        // to be appended to (which would hide that commit at the next start).
        await this.wal.truncate(this.walBytes).catch(() => {});
        throw new AmbitError(
          'AMBIT_ERR_STORE_WRITE',
          `could not write the store's log: ${(cause as Error).message}`,
          { cause },
        );
      }
      this.walBytes += line.length;
      this.apply(rev, stamped);
      this.walRecords++;
      if (this.walRecords >= this.compactEvery) {
        // The commit is already durable; a compaction failure must not report it as failed.
        await this.compact().catch((err) =>
          log.error({ err }, 'store compaction failed; will try again after the next commits'),
        );
      }
      return { rev, changes: stamped };
    });
    this.queue = next.catch(() => {});
    return next;
  }

  watch(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.wal.close();
    this.listeners.clear();
    await this.unlock?.().catch(() => {});
  }

  private apply(rev: number, changes: Change[]): void {
    for (const c of changes) {
      if (c.op === 'put') this.items.set(c.resource.key, c.resource);
      else this.items.delete(c.key);
    }
    this.rev = rev;
    for (const listener of this.listeners) {
      try {
        listener(rev, changes);
      } catch (err) {
        log.error({ err }, 'store listener failed');
      }
    }
  }

  private async replay(walPath: string): Promise<void> {
    const text = await readFile(walPath, 'utf8');
    let offset = 0;
    // Only newline-terminated lines are records: a last line without one was torn mid-write (it was
    // never synced, so never acknowledged) even when it happens to parse.
    for (const line of text.split('\n').slice(0, -1)) {
      if (line === '') break;
      let record: WalRecord;
      try {
        record = JSON.parse(line) as WalRecord;
      } catch {
        break; // torn by a crash mid-write: never acknowledged
      }
      if (record.rev > this.rev) this.apply(record.rev, record.changes);
      offset += Buffer.byteLength(line) + 1;
      this.walRecords++;
    }
    this.walBytes = offset;
    if (offset < Buffer.byteLength(text)) {
      log.warn({ dropped: Buffer.byteLength(text) - offset }, 'dropping a torn log record left by a crash');
      await this.wal.truncate(offset);
      await this.wal.sync();
    }
  }

  /** Writes the whole state as a snapshot (temp file, fsync, rename, fsync dir), then empties the log. */
  private async compact(): Promise<void> {
    const path = join(this.dir, 'snapshot.json');
    const tmp = `${path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.write(JSON.stringify({ rev: this.rev, resources: this.list() } satisfies Snapshot));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dirHandle = await open(this.dir, 'r');
    await dirHandle.sync().finally(() => dirHandle.close());
    await this.wal.truncate(0);
    await this.wal.sync();
    this.walRecords = 0;
    this.walBytes = 0;
  }
}

/** Records the commit's revision on the resource, where Kubernetes clients look for it too. */
function stamp(resource: StoredResource, rev: number): StoredResource {
  const object = {
    ...resource.object,
    metadata: { ...resource.object.metadata, resourceVersion: String(rev) },
  };
  return { ...resource, rev, object };
}

async function readSnapshot(path: string): Promise<Snapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { rev: 0, resources: [] };
    throw err;
  }
  try {
    return JSON.parse(text) as Snapshot;
  } catch (cause) {
    throw new AmbitError(
      'AMBIT_ERR_STORE_CORRUPT',
      `the store snapshot ${path} is not valid JSON; restore it from a backup or move the data directory aside`,
      { cause },
    );
  }
}
