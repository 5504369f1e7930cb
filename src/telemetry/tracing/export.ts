// Spans to the collector an `opentelemetry` extension provider names, through the SDK's own OTLP
// exporters (HTTP/protobuf when the provider sets `http`, else gRPC), behind a bound: spans waiting or in
// flight never exceed `maxQueueSize`, so a collector that is down or slow costs dropped spans (counted),
// never memory, a blocked request or a log line per span.

import * as grpc from '@grpc/grpc-js';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { parseDuration } from '../../config/index.ts';
import { describeError } from '../../errors/index.ts';
import type { Logger } from '../../log/index.ts';
import type { TracingProviderRef } from './resolve.ts';
import type { TracerStats } from './types.ts';

/** The OpenTelemetry exporters' own default export timeout. */
export const DEFAULT_EXPORT_TIMEOUT_MS = 10_000;
/** The standard OTLP/HTTP traces path, used when the provider's `http.path` is unset. */
export const DEFAULT_HTTP_PATH = '/v1/traces';
/** At most one warning about undelivered spans per this long. */
const WARN_EVERY_MS = 60_000;

export function exportTimeoutMs(provider: TracingProviderRef): number {
  const p = provider.opentelemetry;
  const written = p.http ? p.http.timeout : p.grpc?.timeout;
  const ms = written === undefined ? undefined : parseDuration(written);
  return ms === undefined || ms <= 0 ? DEFAULT_EXPORT_TIMEOUT_MS : ms;
}

const hostPart = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** Where the exporter sends: `http://host:port/v1/traces` (OTLP/HTTP) or `http://host:port` (OTLP/gRPC). */
export function collectorUrl(provider: TracingProviderRef, endpoint: { host: string; port: number }): string {
  const base = `http://${hostPart(endpoint.host)}:${endpoint.port}`;
  const http = provider.opentelemetry.http;
  return http ? `${base}${http.path ?? DEFAULT_HTTP_PATH}` : base;
}

/** The SDK exporter for the provider, loading only the transport it uses. */
export async function otlpExporter(
  provider: TracingProviderRef,
  endpoint: { host: string; port: number },
): Promise<SpanExporter> {
  const url = collectorUrl(provider, endpoint);
  const timeoutMillis = exportTimeoutMs(provider);
  const p = provider.opentelemetry;
  if (p.http) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
    const headers = Object.fromEntries((p.http.headers ?? []).map((h) => [h.name, h.value]));
    return new OTLPTraceExporter({ url, headers, timeoutMillis });
  }
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
  const metadata = new grpc.Metadata();
  for (const m of p.grpc?.initialMetadata ?? []) metadata.add(m.name, m.value);
  return new OTLPTraceExporter({
    url,
    metadata,
    timeoutMillis,
    credentials: grpc.credentials.createInsecure(),
  });
}

/**
 * Wraps the exporter (still loading, as a promise) to count what happens to spans and to hold the
 * bound: `admit()` is asked before a span is queued, and a batch leaves the count when the exporter
 * answers — or, should it never answer, after its timeout and a grace second.
 */
export class CountingExporter implements SpanExporter {
  readonly #inner: Promise<SpanExporter>;
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #collector: string;
  #pending = 0;
  #exported = 0;
  #dropped = 0;
  #failed = 0;
  #lastWarn = Number.NEGATIVE_INFINITY;

  constructor(opts: {
    inner: Promise<SpanExporter>;
    maxQueueSize: number;
    timeoutMs: number;
    log: Logger;
    collector: string;
  }) {
    this.#inner = opts.inner;
    this.#max = opts.maxQueueSize;
    this.#timeoutMs = opts.timeoutMs;
    this.#log = opts.log;
    this.#collector = opts.collector;
    // A failure to load the exporter is reported by each export; never an unhandled rejection.
    this.#inner.catch(() => {});
  }

  /** Whether one more span may be queued; when not, it is dropped and counted. */
  admit(): boolean {
    if (this.#pending >= this.#max) {
      this.#dropped++;
      this.#warn('the export queue is full');
      return false;
    }
    this.#pending++;
    return true;
  }

  stats(): TracerStats {
    return { exported: this.#exported, dropped: this.#dropped, failed: this.#failed };
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    let done = false;
    const finish = (result: ExportResult) => {
      if (done) return;
      done = true;
      clearTimeout(guard);
      this.#pending -= spans.length;
      if (result.code === ExportResultCode.SUCCESS) this.#exported += spans.length;
      else {
        this.#failed += spans.length;
        this.#warn(result.error ? describeError(result.error) : 'the export failed');
      }
      resultCallback(result);
    };
    const guard = setTimeout(
      () => finish({ code: ExportResultCode.FAILED, error: new Error(`no answer in ${this.#timeoutMs} ms`) }),
      this.#timeoutMs + 1_000,
    );
    guard.unref();
    this.#inner.then(
      (exporter) => {
        try {
          exporter.export(spans, finish);
        } catch (err) {
          finish({
            code: ExportResultCode.FAILED,
            error: err instanceof Error ? err : new Error(String(err)),
          });
        }
      },
      (err: unknown) =>
        finish({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) }),
    );
  }

  async forceFlush(): Promise<void> {
    const exporter = await this.#inner.catch(() => undefined);
    await exporter?.forceFlush?.();
  }

  async shutdown(): Promise<void> {
    const exporter = await this.#inner.catch(() => undefined);
    await exporter?.shutdown();
  }

  /** One warning a minute at most, with the totals: a down collector must not flood the log. */
  #warn(reason: string): void {
    const now = Date.now();
    if (now - this.#lastWarn < WARN_EVERY_MS) return;
    this.#lastWarn = now;
    this.#log.warn(
      { collector: this.#collector, reason, ...this.stats() },
      'tracing: spans are not reaching the collector; requests are unaffected (next warning in a minute at most)',
    );
  }
}
