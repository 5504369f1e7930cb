// Reading the client's trace context and writing the one the backend gets, with the SDK's own W3C and
// B3 propagators called directly (never the global propagation API, so nothing is registered process-wide).
// W3C Trace Context wins over B3; the backend gets W3C and, when the client spoke B3, the same B3 form.

import {
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type SpanContext,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { B3InjectEncoding, B3Propagator } from '@opentelemetry/propagator-b3';
import type { RequestHeaders } from './types.ts';

export type TraceFormat = 'w3c' | 'b3-single' | 'b3-multi';

export interface IncomingTrace {
  /** The context to parent the server span on: the client's span, or ROOT_CONTEXT for a new trace. */
  context: Context;
  /** The client's span context, when its headers carried a valid one. */
  parent?: SpanContext;
  /**
   * The client's sampling decision: true or false when it made one, undefined when it left it to us
   * (no trace headers, B3 ids without a sampling state, or malformed headers).
   */
  sampled?: boolean;
  /** The B3 form the client used, to answer the backend in kind (W3C is always sent). */
  b3?: 'b3-single' | 'b3-multi';
}

const w3c = new W3CTraceContextPropagator();
// Extraction reads the single `b3` header first, then `x-b3-*`, as the B3 specification says.
const b3Reader = new B3Propagator();
const b3Single = new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });
const b3Multi = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });

function first(headers: RequestHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : v?.[0];
}

function b3Form(headers: RequestHeaders): IncomingTrace['b3'] {
  if (first(headers, 'b3') !== undefined) return 'b3-single';
  if (first(headers, 'x-b3-traceid') !== undefined) return 'b3-multi';
  return undefined;
}

/**
 * Whether the client's B3 headers state a sampling decision. B3 lets a caller send ids and defer the
 * decision (single `{trace}-{span}`, or multi without `x-b3-sampled` / `x-b3-flags`); then we decide.
 */
function b3Decided(headers: RequestHeaders, form: 'b3-single' | 'b3-multi'): boolean {
  if (form === 'b3-single') return (first(headers, 'b3') ?? '').trim().split('-').length >= 3;
  return first(headers, 'x-b3-sampled') !== undefined || first(headers, 'x-b3-flags') !== undefined;
}

const isSampled = (sc: SpanContext): boolean => (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;

/** The trace the request continues, if any. Never throws: headers that do not parse are ignored. */
export function extractTrace(headers: RequestHeaders): IncomingTrace {
  const carrier = headers as Record<string, string | string[] | undefined>;
  const b3 = b3Form(headers);
  try {
    const fromW3c = trace.getSpanContext(w3c.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter));
    if (fromW3c && trace.isSpanContextValid(fromW3c)) {
      const base = {
        context: trace.setSpanContext(ROOT_CONTEXT, fromW3c),
        parent: fromW3c,
        sampled: isSampled(fromW3c),
      };
      return b3 ? { ...base, b3 } : base;
    }
    if (b3 === undefined) return { context: ROOT_CONTEXT };
    // `b3: 0` is a caller saying "do not sample" without giving ids: a new trace, not sampled.
    if (b3 === 'b3-single' && first(headers, 'b3')?.trim() === '0')
      return { context: ROOT_CONTEXT, sampled: false, b3 };
    const fromB3 = trace.getSpanContext(b3Reader.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter));
    if (!fromB3 || !trace.isSpanContextValid(fromB3)) return { context: ROOT_CONTEXT, b3 };
    const base = { context: trace.setSpanContext(ROOT_CONTEXT, fromB3), parent: fromB3, b3 };
    return b3Decided(headers, b3) ? { ...base, sampled: isSampled(fromB3) } : base;
  } catch {
    return { context: ROOT_CONTEXT };
  }
}

/** The trace headers for a request parented on `span`: W3C, plus the client's B3 form when it used one. */
export function injectTrace(span: SpanContext, b3: IncomingTrace['b3']): Record<string, string> {
  const out: Record<string, string> = {};
  const ctx = trace.setSpanContext(ROOT_CONTEXT, span);
  w3c.inject(ctx, out, defaultTextMapSetter);
  if (b3 === 'b3-single') b3Single.inject(ctx, out, defaultTextMapSetter);
  else if (b3 === 'b3-multi') b3Multi.inject(ctx, out, defaultTextMapSetter);
  return out;
}
