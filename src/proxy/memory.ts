// Gives memory back to the system once a burst of work is over. After a garbage collection V8 keeps the
// pages it freed resident (a process that held 10,000 connections measured ~55 MB of them, 15 s and
// more after they closed), and the C allocator keeps what TLS and HTTP/2 sessions freed in its arenas.
// So when the process is quiet and has grown (and once when it first goes quiet after its start), it
// runs one compacting collection that releases V8's pages (tens of milliseconds) and then malloc_trim
// through the addon (milliseconds; more after a large burst). And where the memory is, for the
// proxies' /memory admin view.

import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { addon } from '../os/index.ts';

export interface MemoryTrimOptions {
  /** How often to look (default 5 s). */
  intervalMs?: number;
  /** CPU time below which an interval counts as quiet, as a share of one core (default 0.05). */
  quietCpuShare?: number;
  /** How far above the lowest resident set a trim has left the process must be for a trim (default 16 MiB). */
  minGrowthBytes?: number;
  /** The shortest time between two trims (default 30 s). */
  minGapMs?: number;
  /** Told what each trim released. */
  onTrim?: (before: number, after: number) => void;
}

/** Set by `memoryFreed`, taken by the trim loop (one per thread: each has its own module). */
let freedSinceLook = false;

/**
 * Says that the process let go of something large while quiet (a pool closed the connections a burst
 * opened): the next quiet interval counts as the end of a burst, so the trim gives that memory back.
 */
export function memoryFreed(): void {
  freedSinceLook = true;
}

/**
 * Starts looking; the returned function stops. The timer never keeps the process alive. A trim comes
 * when the process goes quiet after being busy (start-up counts as busy) or after `memoryFreed`, and
 * holds more than it did after its leanest trim: once per burst, and never during one. Measured against
 * the leanest trim, not the last: a trim while a burst's connections are still held leaves a high mark,
 * and the memory those connections free when they close is worth giving back too.
 */
export function trimMemoryWhenQuiet(opts: MemoryTrimOptions = {}): () => void {
  const trimC = trimFunction();
  const compact = compactingCollection();
  const intervalMs = opts.intervalMs ?? 5_000;
  const quietMicros = intervalMs * 1_000 * (opts.quietCpuShare ?? 0.05);
  const minGrowth = opts.minGrowthBytes ?? 16 * 1024 * 1024;
  const minGapMs = opts.minGapMs ?? 30_000;
  let floor = 0; // the lowest resident set a trim has left; 0 before the first
  let busy = true;
  let lastTrim = Number.NEGATIVE_INFINITY;
  let afterTrim = false;
  let cpu = process.cpuUsage();
  const timer = setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    // The trim's own collection finishes on V8's helper threads after it returns: the interval after a
    // trim says nothing about the process's load.
    if (afterTrim) {
      afterTrim = false;
      return;
    }
    if (used.user + used.system > quietMicros) {
      busy = true;
      return;
    }
    if (freedSinceLook) {
      freedSinceLook = false;
      busy = true;
    }
    if (!busy || performance.now() - lastTrim < minGapMs) return;
    busy = false;
    const rss = process.memoryUsage.rss();
    if (rss < floor + minGrowth) return;
    compact?.();
    trimC?.();
    const after = process.memoryUsage.rss();
    floor = floor === 0 ? after : Math.min(floor, after);
    lastTrim = performance.now();
    afterTrim = true;
    cpu = process.cpuUsage(); // the trim's own work does not make the next interval busy
    opts.onTrim?.(rss, after);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

type GcFunction = (opts: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
let gcFunction: GcFunction | null | undefined;

/**
 * A full, compacting collection that returns V8's free pages to the system: V8's `gc` with the
 * last-resort flavour, taken from a context of its own so that the process's global scope never has a
 * `gc` (the flag is on only while that context is made). Null where V8 refuses.
 */
function compactingCollection(): (() => void) | undefined {
  if (gcFunction === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const fn = vm.runInNewContext('gc') as unknown;
      gcFunction = typeof fn === 'function' ? (fn as GcFunction) : null;
    } catch {
      gcFunction = null;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  const gc = gcFunction;
  return gc === null ? undefined : () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

function trimFunction(): (() => boolean) | undefined {
  try {
    const loaded = addon();
    return typeof loaded.trimMemory === 'function' ? () => loaded.trimMemory() : undefined;
  } catch {
    return undefined; // no addon: nothing to trim with (a proxy without capture can still run)
  }
}

/** Where a proxy's memory is, in bytes: what `/memory` on its admin endpoint answers. */
export interface MemoryReport {
  /** Resident set, and its anonymous (the process's own) and file-backed (the node binary, shared libraries) parts. */
  rss: number;
  rssAnon: number;
  rssFile: number;
  heap: { total: number; used: number; spaces: Record<string, { size: number; used: number }> };
  /** Compiled code and bytecode, and the JavaScript source V8 keeps. */
  code: { code: number; bytecode: number; scriptSource: number };
  /** Memory of C++ objects bound to JavaScript ones (TLS sessions, HTTP/2 sessions), and Buffers' share of it. */
  external: number;
  arrayBuffers: number;
  /** The C heap (every glibc arena): bytes live, and bytes free but still held; absent without glibc. */
  malloc?: { inUse: number; free: number };
  /** Where this process runs from: the bundled build (dist/daemons) or the TypeScript sources. */
  build: 'bundle' | 'sources';
}

export function memoryReport(): MemoryReport {
  const usage = process.memoryUsage();
  const status = readStatus();
  const code = v8.getHeapCodeStatistics();
  const spaces: MemoryReport['heap']['spaces'] = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_size > 0) spaces[s.space_name] = { size: s.space_size, used: s.space_used_size };
  }
  return {
    rss: usage.rss,
    rssAnon: status.RssAnon ?? 0,
    rssFile: status.RssFile ?? 0,
    heap: { total: usage.heapTotal, used: usage.heapUsed, spaces },
    code: {
      code: code.code_and_metadata_size,
      bytecode: code.bytecode_and_metadata_size,
      scriptSource: code.external_script_source_size,
    },
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    ...mallocNow(),
    build: import.meta.url.includes('/dist/') ? 'bundle' : 'sources',
  };
}

function mallocNow(): { malloc?: { inUse: number; free: number } } {
  try {
    const info = addon().mallocInfo();
    return info === undefined ? {} : { malloc: { inUse: info.inUse, free: info.free } };
  } catch {
    return {}; // no addon
  }
}

/** The kB lines of /proc/self/status, in bytes (empty where there is no /proc). */
function readStatus(): Record<string, number> {
  const out: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return out;
  }
  for (const match of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[match[1]!] = Number(match[2]) * 1024;
  return out;
}
