// The request tracer: a server span per request through the waypoint, a client span per upstream
// attempt, the trace context passed on to the backend, and spans batched to the provider's collector.
// Each tracer owns its SDK objects (provider, processor, exporter): nothing is registered globally, so
// two tracers never share state, and no call on the request path throws or waits on the collector.

import { type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type Span as SdkSpan,
  type SpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { describeError } from '../../errors/index.ts';
import {
  attemptAttributes,
  attemptFailed,
  attemptResultAttributes,
  clientSpanName,
  customTagValues,
  DEFAULT_MAX_TAG_LENGTH,
  proxyAttributes,
  serverFailed,
  serverRequestAttributes,
  serverResultAttributes,
  serverSpanName,
} from './attributes.ts';
import { CountingExporter, collectorUrl, exportTimeoutMs, otlpExporter } from './export.ts';
import { extractTrace, type IncomingTrace, injectTrace } from './propagation.ts';
import { decide, RequestSampler, withDecision } from './sampler.ts';
import {
  type AttemptResult,
  type IncomingRequest,
  PROPAGATION_HEADERS,
  type RequestHeaders,
  type RequestResult,
  type RequestSettings,
  type RequestSpan,
  type RequestTracer,
  type TracerOptions,
  type TracerStats,
  type TracingFactory,
  type UpstreamAttempt,
  type UpstreamTarget,
} from './types.ts';

const DEFAULT_MAX_QUEUE_SIZE = 2_048;
const MAX_EXPORT_BATCH_SIZE = 512;
/** Envoy's OpenTelemetry tracer flushes every 5 s. */
const DEFAULT_FLUSH_INTERVAL_MS = 5_000;

/** Holds the queue bound: a span is handed to the batch processor only when the exporter admits it. */
class BoundedProcessor implements SpanProcessor {
  readonly #batch: BatchSpanProcessor;
  readonly #exporter: CountingExporter;

  constructor(batch: BatchSpanProcessor, exporter: CountingExporter) {
    this.#batch = batch;
    this.#exporter = exporter;
  }

  onStart(_span: SdkSpan, _parent: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#exporter.admit()) this.#batch.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.#batch.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.#batch.shutdown();
  }
}

/** The client's own trace headers, unchanged: what the backend gets when span reporting is disabled. */
function passthroughHeaders(headers: RequestHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATION_HEADERS) {
    const v = headers[name];
    const value = typeof v === 'string' ? v : v?.[0];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function untraced(headers: RequestHeaders): RequestSpan {
  const kept = passthroughHeaders(headers);
  return {
    traceId: '',
    sampled: false,
    startAttempt: () => ({ headers: { ...kept }, end: () => {} }),
    end: () => {},
  };
}

class ServerSpan implements RequestSpan {
  readonly traceId: string;
  readonly sampled: boolean;
  readonly #tracer: RequestTracerImpl;
  readonly #span: Span;
  readonly #method: string;
  readonly #b3: IncomingTrace['b3'];
  #attempts = 0;
  #ended = false;

  constructor(tracer: RequestTracerImpl, span: Span, method: string, b3: IncomingTrace['b3']) {
    this.#tracer = tracer;
    this.#span = span;
    this.#method = method;
    this.#b3 = b3;
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.sampled = span.isRecording();
  }

  startAttempt(upstream: UpstreamTarget): UpstreamAttempt {
    try {
      const resend = this.#attempts++;
      const parent = trace.setSpan(ROOT_CONTEXT, this.#span);
      const client = this.#tracer.sdk.startSpan(
        clientSpanName(this.#method),
        { kind: SpanKind.CLIENT },
        parent,
      );
      if (client.isRecording()) client.setAttributes(attemptAttributes(this.#method, upstream, resend));
      const headers = injectTrace(client.spanContext(), this.#b3);
      let ended = false;
      return {
        headers,
        end: (result: AttemptResult) => {
          if (ended) return;
          ended = true;
          this.#tracer.guard(() => {
            if (client.isRecording()) {
              client.setAttributes(attemptResultAttributes(result));
              if (attemptFailed(result)) client.setStatus({ code: SpanStatusCode.ERROR });
            }
            client.end();
          });
        },
      };
    } catch (err) {
      this.#tracer.failed(err);
      let headers: Record<string, string> = {};
      this.#tracer.guard(() => {
        headers = injectTrace(this.#span.spanContext(), this.#b3);
      });
      return { headers, end: () => {} };
    }
  }

  end(result: RequestResult): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#tracer.guard(() => {
      if (this.#span.isRecording()) {
        this.#span.setAttributes(serverResultAttributes(result));
        if (result.route) this.#span.updateName(serverSpanName(this.#method, result.route));
        if (serverFailed(result.status)) this.#span.setStatus({ code: SpanStatusCode.ERROR });
      }
      this.#span.end();
    });
  }
}

class RequestTracerImpl implements RequestTracer {
  readonly sdk: ReturnType<TracerProvider['getTracer']>;
  readonly #provider: TracerProvider;
  readonly #exporter: CountingExporter;
  readonly #opts: TracerOptions;
  readonly #proxyAttributes: ReturnType<typeof proxyAttributes>;
  readonly #maxTagLength: number;
  #shutdown: Promise<void> | undefined;

  constructor(opts: TracerOptions) {
    this.#opts = opts;
    const timeoutMs = exportTimeoutMs(opts.provider);
    const maxQueueSize = opts.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE;
    this.#exporter = new CountingExporter({
      inner: otlpExporter(opts.provider, opts.endpoint),
      maxQueueSize,
      timeoutMs,
      log: opts.log,
      collector: `${opts.provider.name} (${collectorUrl(opts.provider, opts.endpoint)})`,
    });
    const batch = new BatchSpanProcessor({
      exporter: this.#exporter,
      maxQueueSize,
      maxExportBatchSize: Math.min(MAX_EXPORT_BATCH_SIZE, maxQueueSize),
      scheduledDelayMillis: opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      // The exporter's own timeout ends an export first; this only keeps the processor from waiting forever.
      exportTimeoutMillis: timeoutMs + 2_000,
    });
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({ ...opts.resourceAttributes, [ATTR_SERVICE_NAME]: opts.serviceName }),
      sampler: new RequestSampler(),
      spanProcessors: [new BoundedProcessor(batch, this.#exporter)],
    });
    this.sdk = this.#provider.getTracer('ambit-waypoint');
    this.#proxyAttributes = proxyAttributes(opts.proxy);
    this.#maxTagLength = opts.provider.opentelemetry.maxTagLength ?? DEFAULT_MAX_TAG_LENGTH;
  }

  startRequest(req: IncomingRequest, settings: RequestSettings): RequestSpan {
    if (settings.disableSpanReporting || this.#shutdown) return untraced(req.headers);
    try {
      const incoming = extractTrace(req.headers);
      const sampled = decide(incoming.sampled, settings.samplingPercentage, Math.random);
      const span = this.sdk.startSpan(
        serverSpanName(req.method),
        { kind: SpanKind.SERVER },
        withDecision(incoming.context, sampled),
      );
      if (span.isRecording()) {
        span.setAttributes(this.#proxyAttributes);
        span.setAttributes(serverRequestAttributes(req, this.#maxTagLength));
        span.setAttributes(customTagValues(settings.customTags, req.headers, process.env));
      }
      return new ServerSpan(this, span, req.method, incoming.b3);
    } catch (err) {
      this.failed(err);
      return untraced(req.headers);
    }
  }

  stats(): TracerStats {
    return this.#exporter.stats();
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= this.#provider.shutdown().catch((err: unknown) => this.failed(err));
    return this.#shutdown;
  }

  /** Runs span bookkeeping that must never fail a request. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.failed(err);
    }
  }

  failed(err: unknown): void {
    this.#opts.log.debug({ err: describeError(err) }, 'tracing: a span could not be recorded');
  }
}

/** The factory `loadTracing()` hands out once the SDK is loaded. */
export const tracingFactory: TracingFactory = {
  create: (opts) => new RequestTracerImpl(opts),
};
