// The sampling decision is made per request (the percentage depends on the Telemetry that applies to the
// request's Service), so the waypoint decides before it starts the server span and hands the decision to
// the SDK through the span's parent context; child spans (upstream attempts) follow their parent.

import { type Context, createContextKey, type SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { type Sampler, SamplingDecision, type SamplingResult } from '@opentelemetry/sdk-trace';

const DECISION = createContextKey('ambit.tracing.sampled');

/** `context` carrying a decision for the next span started under it. */
export function withDecision(context: Context, sampled: boolean): Context {
  return context.setValue(DECISION, sampled);
}

/** Whether a request is sampled: the client's decision when it made one, else a draw at `percentage`. */
export function decide(
  clientSampled: boolean | undefined,
  percentage: number,
  random: () => number,
): boolean {
  if (clientSampled !== undefined) return clientSampled;
  if (percentage <= 0) return false;
  if (percentage >= 100) return true;
  return random() * 100 < percentage;
}

export class RequestSampler implements Sampler {
  shouldSample(context: Context, _traceId: string, _name: string, _kind: SpanKind): SamplingResult {
    const decided = context.getValue(DECISION);
    const sampled =
      typeof decided === 'boolean'
        ? decided
        : ((trace.getSpanContext(context)?.traceFlags ?? TraceFlags.NONE) & TraceFlags.SAMPLED) ===
          TraceFlags.SAMPLED;
    return { decision: sampled ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return 'AmbitRequestSampler';
  }
}
