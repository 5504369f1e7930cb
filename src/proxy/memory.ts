// Gives memory back to the system once a burst of work is over. V8 shrinks its own heap when a process
// goes idle, but the C allocator keeps what TLS and HTTP/2 sessions freed in its arenas: without this, a
// proxy that once held 10,000 connections would hold their memory for good. Trimming walks every arena
// (milliseconds, more after a large burst), so it runs only when the process is quiet and has grown.

import { addon } from '../os/index.ts';

export interface MemoryTrimOptions {
  /** How often to look (default 5 s). */
  intervalMs?: number;
  /** CPU time below which an interval counts as quiet, as a share of one core (default 0.05). */
  quietCpuShare?: number;
  /** Growth of the resident set since the last trim that makes a trim worth it (default 16 MiB). */
  minGrowthBytes?: number;
  /** Told what each trim released. */
  onTrim?: (before: number, after: number) => void;
}

/** Starts looking; the returned function stops. The timer never keeps the process alive. */
export function trimMemoryWhenQuiet(opts: MemoryTrimOptions = {}): () => void {
  const trim = trimFunction();
  if (trim === undefined) return () => {};
  const intervalMs = opts.intervalMs ?? 5_000;
  const quietMicros = intervalMs * 1_000 * (opts.quietCpuShare ?? 0.05);
  const minGrowth = opts.minGrowthBytes ?? 16 * 1024 * 1024;
  let baseline = process.memoryUsage.rss();
  let cpu = process.cpuUsage();
  const timer = setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const rss = process.memoryUsage.rss();
    if (used.user + used.system > quietMicros || rss < baseline + minGrowth) return;
    trim();
    baseline = process.memoryUsage.rss();
    opts.onTrim?.(rss, baseline);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

function trimFunction(): (() => boolean) | undefined {
  try {
    const loaded = addon();
    return typeof loaded.trimMemory === 'function' ? () => loaded.trimMemory() : undefined;
  } catch {
    return undefined; // no addon: nothing to trim with (a proxy without capture can still run)
  }
}
