// Trace context through the waypoint: W3C `traceparent`/`tracestate` and B3 (single `b3` and multi
// `x-b3-*`) continue the client's trace with a new span id, the backend gets W3C plus the client's B3
// form, the client's sampling decision wins over the percentage, and headers that do not parse start a
// new trace instead of throwing. Spans that are sampled go to a closed loopback port when the tracer shuts down.

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { logger } from '../../../src/log/index.ts';
import {
  type IncomingRequest,
  loadTracing,
  PROPAGATION_HEADERS,
  type RequestSettings,
  type RequestTracer,
} from '../../../src/telemetry/tracing/index.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

const ALWAYS: RequestSettings = { samplingPercentage: 100, customTags: {}, disableSpanReporting: false };
const NEVER: RequestSettings = { ...ALWAYS, samplingPercentage: 0 };

const request = (headers: IncomingRequest['headers']): IncomingRequest => ({
  method: 'GET',
  path: '/reviews/1',
  host: 'reviews.shop:9080',
  headers,
  protocol: '1.1',
});

/** A loopback port nothing listens on: exports fail at once, and nothing leaves the host. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const log = logger('tracing-test');
// The closed port makes the tracer warn once; that warning is not what these tests look at.
log.level = 'error';

let tracer: RequestTracer;

before(async () => {
  const factory = await loadTracing();
  tracer = factory.create({
    provider: {
      name: 'otel',
      opentelemetry: { service: 'otel.observability.svc.cluster.local', port: 4318, http: { timeout: '1s' } },
    },
    endpoint: { host: '127.0.0.1', port: await closedPort() },
    serviceName: 'waypoint.shop',
    proxy: {
      canonicalService: 'waypoint',
      namespace: 'shop',
      nodeId: 'waypoint~198.18.1.5~waypoint-0.shop~shop.svc.cluster.local',
    },
    log,
    flushIntervalMs: 60_000,
  });
});

after(() => tracer.shutdown());

/** The upstream trace headers of one attempt of a request with these headers, and the request's span. */
function forward(headers: IncomingRequest['headers'], settings: RequestSettings = ALWAYS) {
  const span = tracer.startRequest(request(headers), settings);
  const attempt = span.startAttempt({
    cluster: 'outbound|9080||reviews.shop.svc.cluster.local',
    address: '198.18.1.7:9080',
  });
  attempt.end({ status: 200 });
  span.end({ status: 200, flags: '-' });
  return { span, out: attempt.headers };
}

function parent(out: Record<string, string>): { traceId: string; spanId: string; sampled: boolean } {
  const m = TRACEPARENT.exec(out.traceparent ?? '');
  assert.ok(m, `a valid traceparent goes upstream (got ${out.traceparent})`);
  return { traceId: m[1]!, spanId: m[2]!, sampled: m[3] === '01' };
}

describe('W3C trace context', () => {
  test('continues the trace: same trace id, a new span id, tracestate kept, no B3 added', () => {
    const { span, out } = forward({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'congo=t61rcWkgMzE' });
    const p = parent(out);
    assert.equal(span.traceId, TRACE);
    assert.equal(p.traceId, TRACE);
    assert.notEqual(p.spanId, SPAN, 'the backend sees the waypoint span, not the client span');
    assert.equal(p.sampled, true);
    assert.equal(out.tracestate, 'congo=t61rcWkgMzE');
    assert.deepEqual(Object.keys(out).sort(), ['traceparent', 'tracestate']);
  });

  test("the client's 'not sampled' wins over 100%", () => {
    const { span, out } = forward({ traceparent: `00-${TRACE}-${SPAN}-00` });
    assert.equal(span.sampled, false);
    assert.equal(parent(out).traceId, TRACE);
    assert.equal(parent(out).sampled, false);
  });

  test("the client's 'sampled' wins over 0%", () => {
    const { span, out } = forward({ traceparent: `00-${TRACE}-${SPAN}-01` }, NEVER);
    assert.equal(span.sampled, true);
    assert.equal(parent(out).sampled, true);
  });

  test('a header given twice (an array) reads its first value', () => {
    const { out } = forward({ traceparent: [`00-${TRACE}-${SPAN}-01`, `00-${'a'.repeat(32)}-${SPAN}-01`] });
    assert.equal(parent(out).traceId, TRACE);
  });

  test('W3C wins over B3, and the B3 form the client used is answered with the same trace', () => {
    const { out } = forward({
      traceparent: `00-${TRACE}-${SPAN}-01`,
      'x-b3-traceid': 'a'.repeat(32),
      'x-b3-spanid': 'b'.repeat(16),
      'x-b3-sampled': '1',
    });
    const p = parent(out);
    assert.equal(p.traceId, TRACE);
    assert.equal(out['x-b3-traceid'], TRACE);
    assert.equal(out['x-b3-spanid'], p.spanId);
    assert.equal(out['x-b3-sampled'], '1');
  });
});

describe('no trace context', () => {
  test('starts a trace at 100%: W3C only, sampled', () => {
    const { span, out } = forward({});
    const p = parent(out);
    assert.equal(p.traceId, span.traceId);
    assert.equal(p.sampled, true);
    assert.deepEqual(Object.keys(out), ['traceparent']);
  });

  test('starts a trace at 0%: ids still propagate, not sampled', () => {
    const { span, out } = forward({}, NEVER);
    assert.equal(span.sampled, false);
    assert.equal(parent(out).traceId, span.traceId);
    assert.equal(parent(out).sampled, false);
  });

  test('two requests get two traces', () => {
    assert.notEqual(forward({}).span.traceId, forward({}).span.traceId);
  });
});

describe('B3 single header', () => {
  test('continues the trace and answers in W3C and b3', () => {
    const { span, out } = forward({ b3: `${TRACE}-${SPAN}-1` }, NEVER);
    const p = parent(out);
    assert.equal(span.traceId, TRACE);
    assert.equal(p.sampled, true, "the client's sampled flag wins over 0%");
    assert.equal(out.b3, `${TRACE}-${p.spanId}-1`);
    assert.notEqual(p.spanId, SPAN);
    assert.equal(out['x-b3-traceid'], undefined);
  });

  test('a 64-bit trace id is widened to 128 bits', () => {
    const { span } = forward({ b3: `${TRACE.slice(16)}-${SPAN}-1` });
    assert.equal(span.traceId, `${'0'.repeat(16)}${TRACE.slice(16)}`);
  });

  test('`b3: 0` (do not sample, no ids) starts an unsampled trace even at 100%', () => {
    const { span, out } = forward({ b3: '0' });
    assert.equal(span.sampled, false);
    assert.notEqual(span.traceId, '');
    assert.equal(out.b3, `${span.traceId}-${parent(out).spanId}-0`);
  });

  test('ids without a sampling state leave the decision to the percentage', () => {
    assert.equal(forward({ b3: `${TRACE}-${SPAN}` }).span.sampled, true);
    assert.equal(forward({ b3: `${TRACE}-${SPAN}` }, NEVER).span.sampled, false);
    assert.equal(forward({ b3: `${TRACE}-${SPAN}` }, NEVER).span.traceId, TRACE);
  });

  test('debug (`d`) means sampled', () => {
    assert.equal(forward({ b3: `${TRACE}-${SPAN}-d` }, NEVER).span.sampled, true);
  });
});

describe('B3 multiple headers', () => {
  const multi = (sampled?: string, flags?: string) => ({
    'x-b3-traceid': TRACE,
    'x-b3-spanid': SPAN,
    'x-b3-parentspanid': 'e457b5a2e4d86bd1',
    ...(sampled === undefined ? {} : { 'x-b3-sampled': sampled }),
    ...(flags === undefined ? {} : { 'x-b3-flags': flags }),
  });

  test('continues the trace and answers in W3C and x-b3-*', () => {
    const { span, out } = forward(multi('1'), NEVER);
    const p = parent(out);
    assert.equal(span.traceId, TRACE);
    assert.equal(out['x-b3-traceid'], TRACE);
    assert.equal(out['x-b3-spanid'], p.spanId);
    assert.notEqual(p.spanId, SPAN);
    assert.equal(out['x-b3-sampled'], '1');
    assert.equal(out.b3, undefined);
    assert.equal(out['x-b3-parentspanid'], undefined, 'the old parent id is not passed on');
  });

  test('`x-b3-sampled: 0` wins over 100%', () => {
    const { span, out } = forward(multi('0'));
    assert.equal(span.sampled, false);
    assert.equal(out['x-b3-sampled'], '0');
    assert.equal(parent(out).sampled, false);
  });

  test('`x-b3-flags: 1` (debug) means sampled', () => {
    assert.equal(forward(multi(undefined, '1'), NEVER).span.sampled, true);
  });

  test('no sampling state: the percentage decides', () => {
    assert.equal(forward(multi()).span.sampled, true);
    assert.equal(forward(multi(), NEVER).span.sampled, false);
  });
});

describe('upstream attempts', () => {
  test('each attempt is its own span in the same trace', () => {
    const span = tracer.startRequest(request({ traceparent: `00-${TRACE}-${SPAN}-01` }), ALWAYS);
    const target = { cluster: 'outbound|9080||reviews.shop.svc.cluster.local', address: '198.18.1.7:9080' };
    const first = span.startAttempt(target);
    first.end({ error: 'upstream connect error' });
    const retry = span.startAttempt(target);
    retry.end({ status: 200 });
    span.end({ status: 200, flags: '-' });
    assert.equal(parent(first.headers).traceId, TRACE);
    assert.equal(parent(retry.headers).traceId, TRACE);
    assert.notEqual(parent(first.headers).spanId, parent(retry.headers).spanId);
  });

  test('ending twice, or attempting after the end, never throws', () => {
    const span = tracer.startRequest(request({}), ALWAYS);
    span.end({ status: 503, flags: 'UF' });
    span.end({ status: 503, flags: 'UF' });
    const late = span.startAttempt({ cluster: 'c', address: '198.18.1.7:80' });
    late.end({ status: 200 });
    late.end({ status: 200 });
    assert.equal(parent(late.headers).traceId, span.traceId);
  });
});

describe('span reporting disabled', () => {
  test("the client's trace headers pass through unchanged and no span is made", () => {
    const headers = {
      traceparent: `00-${TRACE}-${SPAN}-01`,
      tracestate: 'a=b',
      'x-b3-sampled': '1',
      other: 'x',
    };
    const span = tracer.startRequest(request(headers), { ...ALWAYS, disableSpanReporting: true });
    const attempt = span.startAttempt({ cluster: 'c', address: '198.18.1.7:80' });
    assert.equal(span.traceId, '');
    assert.deepEqual(attempt.headers, {
      traceparent: `00-${TRACE}-${SPAN}-01`,
      tracestate: 'a=b',
      'x-b3-sampled': '1',
    });
    attempt.end({ status: 200 });
    span.end({ status: 200, flags: '-' });
  });
});

describe('malformed trace headers start a new trace, never throw', () => {
  const bad: Array<[string, IncomingRequest['headers']]> = [
    ['garbage traceparent', { traceparent: 'not-a-traceparent' }],
    ['all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-${SPAN}-01` }],
    ['all-zero span id', { traceparent: `00-${TRACE}-${'0'.repeat(16)}-01` }],
    ['version ff', { traceparent: `ff-${TRACE}-${SPAN}-01` }],
    ['upper-case hex', { traceparent: `00-${TRACE.toUpperCase()}-${SPAN}-01` }],
    ['truncated', { traceparent: `00-${TRACE}-${SPAN.slice(4)}-01` }],
    ['garbage b3', { b3: 'zzz' }],
    ['b3 with a short span id', { b3: `${TRACE}-abc-1` }],
    ['x-b3 without a span id', { 'x-b3-traceid': TRACE }],
    [
      'x-b3 with a bad sampled value',
      { 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'maybe' },
    ],
    ['an empty array', { traceparent: [] }],
    ['a huge header', { traceparent: `00-${TRACE}-${SPAN}-01${'0'.repeat(100_000)}` }],
  ];
  for (const [name, headers] of bad) {
    test(name, () => {
      const { span, out } = forward(headers, NEVER);
      assert.notEqual(span.traceId, TRACE, 'the malformed context is not continued');
      assert.match(span.traceId, /^[0-9a-f]{32}$/);
      assert.equal(parent(out).traceId, span.traceId);
    });
  }

  test('any header values at all', () => {
    const value = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.constant(undefined));
    fc.assert(
      fc.property(
        fc.record(Object.fromEntries(PROPAGATION_HEADERS.map((h) => [h, value])), { requiredKeys: [] }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (headers, samplingPercentage) => {
          const { span, out } = forward(headers as IncomingRequest['headers'], {
            ...ALWAYS,
            samplingPercentage,
          });
          assert.equal(parent(out).traceId, span.traceId);
        },
      ),
      { numRuns: 300 },
    );
  });
});
