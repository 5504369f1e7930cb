// The embedded store: resources in memory, made durable by a write-ahead log in the data directory.
// A commit is acknowledged only after its log record is fsynced, so `kill -9` never loses an
// acknowledged write; a record torn by a crash was never acknowledged and is dropped on recovery.
// Each record carries a CRC-32, so a damaged record that a later one follows (it was acknowledged)
// is reported as corruption instead of being taken for a torn write and silently cut away.
// The log is compacted into an atomically replaced snapshot once it grows.

import { type FileHandle, mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import lockfile from 'proper-lockfile';
import { AmbitError } from '../../errors/index.ts';
import { logger } from '../../log/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { MirroredStore } from './mirror.ts';
import { type Change, type Store, type StoredResource, stamp } from './types.ts';

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

export class EmbeddedStore extends MirroredStore {
  private walRecords = 0;
  private unlock: (() => Promise<void>) | undefined;
  /** Size of the log's acknowledged records: a failed write is cut back to this. */
  private walBytes = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Set when a failed write could not be cut back: the log's end is unknown, so nothing more is written. */
  private broken: Error | undefined;
  /** Set when the data directory's lock was lost: another writer may be there, so no more commits. */
  private lockLost: Error | undefined;

  private readonly dir: string;
  private readonly wal: FileHandle;
  private readonly compactEvery: number;

  private constructor(dir: string, wal: FileHandle, compactEvery: number) {
    super();
    this.dir = dir;
    this.wal = wal;
    this.compactEvery = compactEvery;
  }

  /** Opens (creating when absent) the store in `dir`, replaying snapshot and log. */
  static async open(dir: string, opts: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // One writer per data directory: a second control plane on it would interleave its log with ours.
    let unlock: () => Promise<void>;
    let opened: EmbeddedStore | undefined;
    try {
      unlock = await lockfile.lock(dir, {
        lockfilePath: join(dir, 'store.lock'),
        realpath: false,
        stale: 3_000,
        update: 1_000,
        retries: { retries: 20, minTimeout: 100, maxTimeout: 300 },
        // The default throws from a timer, which would take the whole control plane down; refusing
        // further commits is enough (reads and the proxies' streams keep serving).
        onCompromised: (err) => {
          if (opened?.closed) return;
          log.error({ err, dir }, "lost the data directory's lock; refusing commits until restarted");
          if (opened) opened.lockLost = err;
        },
      });
    } catch (cause) {
      throw new AmbitError(
        CONTROL_ERRORS.STORE_LOCKED,
        `another control plane is using the data directory ${dir}; stop it, or give this one its own --data-dir`,
        { cause },
      );
    }
    try {
      const snapshot = await readSnapshot(join(dir, 'snapshot.json'));
      const walPath = join(dir, 'wal.jsonl');
      const wal = await open(walPath, 'a+', 0o600);
      const store = new EmbeddedStore(dir, wal, opts.compactEvery ?? 1_000);
      opened = store;
      store.unlock = unlock;
      store.mirror.apply(
        snapshot.rev,
        snapshot.resources.map((resource) => ({ op: 'put', resource })),
      );
      await store.replay(walPath).catch(async (err) => {
        await wal.close().catch(() => {});
        throw err;
      });
      log.info({ dir, revision: store.revision, resources: store.mirror.size }, 'store opened');
      return store;
    } catch (err) {
      await unlock().catch(() => {});
      throw err;
    }
  }

  /**
   * Applies `changes` atomically and durably, after `check` (run under the store's write lock, so
   * it sees every earlier commit) has approved them. Returns the new revision.
   */
  commit(build: (store: Store) => Change[]): Promise<{ rev: number; changes: Change[] }> {
    const next = this.queue.then(async () => {
      if (this.closed) throw new AmbitError(CONTROL_ERRORS.STORE_CLOSED, 'the store is closed');
      if (this.lockLost) {
        throw new AmbitError(
          CONTROL_ERRORS.STORE_LOCK_LOST,
          `the data directory's lock was lost (${this.lockLost.message}): another control plane may be writing there; restart this one`,
          { cause: this.lockLost },
        );
      }
      if (this.broken) {
        throw new AmbitError(
          CONTROL_ERRORS.STORE_WRITE,
          `the store's log could not be repaired after a failed write (${this.broken.message}); restart the control plane`,
          { cause: this.broken },
        );
      }
      const changes = build(this);
      if (changes.length === 0) return { rev: this.revision, changes };
      const rev = this.revision + 1;
      const stamped = changes.map((c) => (c.op === 'put' ? { ...c, resource: stamp(c.resource, rev) } : c));
      const line = encodeRecord({ rev, changes: stamped });
      try {
        const { bytesWritten } = await this.wal.write(line);
        if (bytesWritten !== line.length)
          throw new Error(`short write: ${bytesWritten} of ${line.length} bytes (disk full?)`);
        await this.wal.sync();
      } catch (cause) {
        // Nothing was acknowledged: cut the log back, so no partial record is left for the next commit
        // to be appended to (which would hide that commit at the next start).
        await this.wal.truncate(this.walBytes).catch((err: Error) => {
          this.broken = err;
        });
        throw new AmbitError(
          CONTROL_ERRORS.STORE_WRITE,
          `could not write the store's log: ${(cause as Error).message}`,
          { cause },
        );
      }
      this.walBytes += line.length;
      this.mirror.apply(rev, stamped);
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.wal.close();
    this.mirror.close();
    await this.unlock?.().catch(() => {});
  }

  /**
   * Replays the log. Only the last record can have been torn by a crash (each record is fsynced before
   * the next is written), so only the last may be damaged: it is dropped. A damaged record with
   * another after it was acknowledged, and the store refuses to open rather than lose it.
   */
  private async replay(walPath: string): Promise<void> {
    const bytes = await readFile(walPath);
    const lastNewline = bytes.lastIndexOf(NEWLINE);
    let offset = 0;
    let line = 0;
    let prevRev: number | undefined;
    while (offset <= lastNewline) {
      const end = bytes.indexOf(NEWLINE, offset);
      line++;
      const record = decodeRecord(bytes.subarray(offset, end));
      if (typeof record === 'string') {
        const isLast = end === bytes.length - 1;
        if (isLast && !holdsCompleteRecord(bytes.subarray(offset, end))) break; // torn by a crash mid-write
        throw corruptLog(walPath, line, offset, prevRev, record);
      }
      if (prevRev !== undefined && record.rev !== prevRev + 1)
        throw corruptLog(
          walPath,
          line,
          offset,
          prevRev,
          `its revision ${record.rev} does not follow ${prevRev}`,
        );
      if (record.rev > this.revision) {
        if (record.rev !== this.revision + 1) {
          throw corruptLog(
            walPath,
            line,
            offset,
            prevRev,
            `its revision ${record.rev} leaves a gap after revision ${this.revision}`,
          );
        }
        this.mirror.apply(record.rev, record.changes);
      }
      prevRev = record.rev;
      offset = end + 1;
      this.walRecords++;
    }
    this.walBytes = offset;
    if (offset < bytes.length) {
      log.warn({ dropped: bytes.length - offset }, 'dropping a torn log record left by a crash');
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
      await fh.write(JSON.stringify({ rev: this.revision, resources: this.list() } satisfies Snapshot));
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

const NEWLINE = 0x0a;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One log line: the record's JSON with `"crc"`, the CRC-32 of that JSON without it, as its last field.
 * JSON.stringify never writes a raw newline, so the line's only newline is the one that ends it.
 */
function encodeRecord(record: WalRecord): Buffer {
  const body = JSON.stringify(record);
  return Buffer.from(`${body.slice(0, -1)},"crc":${crc32(body)}}\n`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isChange(c: unknown): c is Change {
  if (!isObject(c)) return false;
  if (c.op === 'delete') return typeof c.key === 'string';
  return (
    c.op === 'put' &&
    isObject(c.resource) &&
    typeof c.resource.key === 'string' &&
    isObject(c.resource.object)
  );
}

/** The record on one log line, or why it is not one. Records written before checksums have no `crc`. */
function decodeRecord(bytes: Uint8Array): WalRecord | string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return 'it is not valid UTF-8';
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'it is not valid JSON';
  }
  if (!isObject(value)) return 'it is not a log record';
  const { rev, changes, crc, ...extra } = value;
  if (Object.keys(extra).length > 0) return `it has unknown fields ${Object.keys(extra).join(', ')}`;
  if (typeof rev !== 'number' || !Number.isSafeInteger(rev) || rev < 1)
    return 'its revision is not a positive integer';
  if (!Array.isArray(changes) || !changes.every(isChange)) return 'its changes are malformed';
  if (crc !== undefined) {
    const suffix = `,"crc":${String(crc)}}`;
    if (
      typeof crc !== 'number' ||
      !text.endsWith(suffix) ||
      crc32(`${text.slice(0, -suffix.length)}}`) !== crc
    )
      return 'its checksum does not match its content';
  }
  return { rev, changes };
}

/**
 * True when a damaged last line starts with a whole, valid record: then the damage is not a torn write
 * of that record (it was complete), but a lost newline that joined it to the next.
 */
function holdsCompleteRecord(bytes: Buffer): boolean {
  for (let at = bytes.indexOf(',"crc":'); at !== -1; at = bytes.indexOf(',"crc":', at + 1)) {
    let end = at + ',"crc":'.length;
    while (end < bytes.length && bytes[end]! >= 0x30 && bytes[end]! <= 0x39) end++;
    if (bytes[end] !== 0x7d || end + 1 >= bytes.length) continue;
    if (typeof decodeRecord(bytes.subarray(0, end + 1)) !== 'string') return true;
  }
  return false;
}

function corruptLog(path: string, line: number, offset: number, lastGood: number | undefined, why: string) {
  const cut =
    lastGood === undefined
      ? 'or move the log aside: no record before it is intact'
      : `or cut the log there with "truncate -s ${offset} ${path}" to keep revisions up to ${lastGood} and lose the rest`;
  return new AmbitError(
    CONTROL_ERRORS.STORE_CORRUPT,
    `the store's log ${path} is damaged at line ${line} (byte ${offset}): ${why}; this is not a record torn by a crash (one follows it, or it is whole), so it is not dropped silently: restore the data directory from a backup, ${cut}`,
    { detail: { path, line, offset } },
  );
}

async function readSnapshot(path: string): Promise<Snapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { rev: 0, resources: [] };
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new AmbitError(
      CONTROL_ERRORS.STORE_CORRUPT,
      `the store snapshot ${path} is not valid JSON; restore it from a backup or move the data directory aside`,
      { cause },
    );
  }
  const ok =
    isObject(value) &&
    typeof value.rev === 'number' &&
    Number.isSafeInteger(value.rev) &&
    value.rev >= 0 &&
    Array.isArray(value.resources) &&
    value.resources.every((r) => isObject(r) && typeof r.key === 'string' && isObject(r.object));
  if (!ok) {
    throw new AmbitError(
      CONTROL_ERRORS.STORE_CORRUPT,
      `the store snapshot ${path} is not a snapshot (a revision and a list of resources); restore it from a backup or move the data directory aside`,
    );
  }
  return value as unknown as Snapshot;
}
