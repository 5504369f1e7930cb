// The dashboard's two sources, the control plane's admin API and Prometheus. Every read has a deadline
// for the whole exchange, so a source that accepts and never answers holds no page. A failed read falls
// back to the last good answer to the same question, marked stale with the time it was read; what an
// answer says of each source is what happened to that answer's own reads.

import { describeError } from '../errors/index.ts';
import type { Envelope, SourceState, Window } from './model.ts';

/** Answers kept for falling back (one per question: a window, a namespace, a page). */
const MAX_REMEMBERED = 256;
/** A read gives up after this (the page waits 8 s for the whole answer, whose reads run side by side). */
export const READ_DEADLINE_MS = 5000;

type SourceName = 'control' | 'prometheus';

interface Remembered {
  value: unknown;
  at: string;
}

export class Sources {
  /** When each source last answered anything. */
  private readonly lastOk: Partial<Record<SourceName, string>> = {};
  private readonly remembered = new Map<string, Remembered>();
  readonly prometheusUrl: string;
  private readonly deadlineMs: number;

  constructor(prometheusUrl: string, opts: { deadlineMs?: number } = {}) {
    this.prometheusUrl = prometheusUrl;
    this.deadlineMs = opts.deadlineMs ?? READ_DEADLINE_MS;
  }

  /** A request's view of the sources: what it read, whether any of it was stale, what to tell the reader. */
  begin(window: Window): Reading {
    return new Reading(this, window);
  }

  /** Runs `read` against `source`; on failure, the last good answer to `key` and when it was read. */
  async read<T>(
    source: SourceName,
    key: string,
    read: () => Promise<T>,
  ): Promise<{ value: T | undefined; error?: string; staleSince?: string }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${this.deadlineMs} ms`)),
          this.deadlineMs,
        );
      });
      const value = await Promise.race([read(), deadline]);
      const at = new Date().toISOString();
      this.lastOk[source] = at;
      this.remember(`${source}|${key}`, { value, at });
      return { value };
    } catch (err) {
      const last = this.remembered.get(`${source}|${key}`);
      return {
        value: last?.value as T | undefined,
        error: describeError(err),
        ...(last ? { staleSince: last.at } : {}),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  lastAnswered(source: SourceName): string | undefined {
    return this.lastOk[source];
  }

  private remember(key: string, entry: Remembered): void {
    this.remembered.delete(key);
    this.remembered.set(key, entry);
    if (this.remembered.size > MAX_REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
  }
}

const SOURCE_NAMES: Record<SourceName, string> = { control: 'The control plane', prometheus: 'Prometheus' };

/** One answer in the making: its reads, and the envelope that says how they went. */
export class Reading {
  private readonly warnings: string[] = [];
  private readonly errors: Partial<Record<SourceName, string>> = {};
  /** Per source, the oldest remembered answer this answer fell back to. */
  private readonly staleSince: Partial<Record<SourceName, string>> = {};
  private readonly sources: Sources;
  readonly window: Window;

  constructor(sources: Sources, window: Window) {
    this.sources = sources;
    this.window = window;
  }

  /** A read whose failure leaves the remembered answer, or `fallback` (and a warning) when there is none. */
  async get<T>(source: SourceName, key: string, read: () => Promise<T>, fallback: T): Promise<T> {
    const r = await this.sources.read(source, key, read);
    if (r.error !== undefined) this.failed(source, r.error, r.staleSince);
    return r.value ?? fallback;
  }

  /** Records a failed read of `source` (and, when an old answer stands in, since when). */
  failed(source: SourceName, error: string, staleSince?: string): void {
    this.errors[source] = error;
    if (staleSince !== undefined) {
      const before = this.staleSince[source];
      if (before === undefined || staleSince < before) this.staleSince[source] = staleSince;
    }
    this.warn(
      staleSince !== undefined
        ? `${SOURCE_NAMES[source]} did not answer (${error}); showing its answer from ${staleSince}.`
        : `${SOURCE_NAMES[source]} did not answer (${error}); this part is empty.`,
    );
  }

  /** Whether every read of `source` in this answer succeeded. */
  ok(source: SourceName): boolean {
    return this.errors[source] === undefined;
  }

  warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  envelope(): Envelope {
    const state = (source: SourceName): SourceState => {
      const lastOk = this.staleSince[source] ?? this.sources.lastAnswered(source);
      return {
        ok: this.ok(source),
        ...(this.errors[source] !== undefined ? { error: this.errors[source] } : {}),
        ...(lastOk !== undefined ? { lastOk } : {}),
      };
    };
    return {
      generatedAt: new Date().toISOString(),
      window: this.window,
      sources: {
        control: state('control'),
        prometheus: { ...state('prometheus'), url: this.sources.prometheusUrl },
      },
      stale: Object.keys(this.staleSince).length > 0,
      warnings: [...this.warnings],
    };
  }
}
