// The dashboard's two sources, the control plane's admin API and Prometheus, each asked with a deadline.
// A read that fails falls back to the last good answer to the same question, marked stale, and the
// source's state says why; nothing waits on a source that is down for longer than its deadline.

import { describeError } from '../errors/index.ts';
import type { Envelope, SourceState, Window } from './model.ts';

/** Answers kept for falling back (one per question: a window, a namespace, a page). */
const MAX_REMEMBERED = 256;

type SourceName = 'control' | 'prometheus';

export class Sources {
  private readonly states: Record<SourceName, SourceState> = {
    control: { ok: true },
    prometheus: { ok: true },
  };
  private readonly remembered = new Map<string, unknown>();
  private readonly prometheusUrl: string;

  constructor(prometheusUrl: string) {
    this.prometheusUrl = prometheusUrl;
  }

  /** A request's view of the sources: what it read, whether any of it was stale, what to tell the reader. */
  begin(window: Window): Reading {
    return new Reading(this, window);
  }

  /** Runs `read` against `source`; on failure, the last good answer to `key` (or undefined). */
  async read<T>(
    source: SourceName,
    key: string,
    read: () => Promise<T>,
  ): Promise<{ value: T | undefined; stale: boolean; error?: string }> {
    try {
      const value = await read();
      this.states[source] = { ok: true, lastOk: new Date().toISOString() };
      this.remember(`${source}|${key}`, value);
      return { value, stale: false };
    } catch (err) {
      const error = describeError(err);
      this.states[source] = { ...this.states[source], ok: false, error };
      const last = this.remembered.get(`${source}|${key}`) as T | undefined;
      return { value: last, stale: last !== undefined, error };
    }
  }

  state(): Envelope['sources'] {
    return {
      control: { ...this.states.control },
      prometheus: { ...this.states.prometheus, url: this.prometheusUrl },
    };
  }

  private remember(key: string, value: unknown): void {
    this.remembered.delete(key);
    this.remembered.set(key, value);
    if (this.remembered.size > MAX_REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
  }
}

/** One answer in the making: its reads, and the envelope that says how fresh they were. */
export class Reading {
  private stale = false;
  private readonly warnings: string[] = [];
  private readonly sources: Sources;
  readonly window: Window;

  constructor(sources: Sources, window: Window) {
    this.sources = sources;
    this.window = window;
  }

  /** A read whose failure leaves `fallback` (and a warning) when nothing was remembered. */
  async get<T>(source: SourceName, key: string, read: () => Promise<T>, fallback: T): Promise<T> {
    const r = await this.sources.read(source, key, read);
    if (r.error !== undefined) {
      this.stale ||= r.stale;
      this.warn(
        r.stale
          ? `${source === 'control' ? 'The control plane' : 'Prometheus'} did not answer (${r.error}); showing its last answer.`
          : `${source === 'control' ? 'The control plane' : 'Prometheus'} did not answer (${r.error}); this part is empty.`,
      );
    }
    return r.value ?? fallback;
  }

  warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  envelope(): Envelope {
    return {
      generatedAt: new Date().toISOString(),
      window: this.window,
      sources: this.sources.state(),
      stale: this.stale,
      warnings: [...this.warnings],
    };
  }
}
