// faultFor as a table: delays and aborts sampled independently with an injected random source, the
// Envoy response flags (DI, FI) and abort body, unresolvable ExtensionRefs, and gRPC aborts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HTTPFaultResource } from '../../../src/config/index.ts';
import {
  abortReply,
  type FaultResult,
  faultFor,
  grpcStatusCode,
  httpToGrpcStatus,
  invalidFilterReply,
} from '../../../src/waypoint/fault.ts';
import type { ExtensionRef } from '../../../src/waypoint/route-types.ts';

type Spec = HTTPFaultResource['spec'];

function fault(name: string, spec: Spec, namespace = 'shop'): HTTPFaultResource {
  return { apiVersion: 'ambit.dev/v1alpha1', kind: 'HTTPFault', metadata: { name, namespace }, spec };
}

const FAULTS = [
  fault('delay', { delay: { fixedDelay: '5s' } }),
  fault('delay-half', { delay: { fixedDelay: '250ms', percentage: { value: 50 } } }),
  fault('delay-never', { delay: { fixedDelay: '1s', percentage: { value: 0 } } }),
  fault('abort', { abort: { httpStatus: 503 } }),
  fault('abort-half', { abort: { httpStatus: 500, percentage: { value: 50 } } }),
  fault('abort-never', { abort: { httpStatus: 500, percentage: { value: 0 } } }),
  fault('both', {
    delay: { fixedDelay: '1s', percentage: { value: 50 } },
    abort: { httpStatus: 429, percentage: { value: 50 } },
  }),
  fault('grpc-name', { abort: { grpcStatus: 'UNAVAILABLE' } }),
  fault('grpc-number', { abort: { grpcStatus: 5 } }),
  fault('in-other-ns', { abort: { httpStatus: 503 } }, 'other'),
];

const lookup = (namespace: string, name: string) =>
  FAULTS.find((f) => f.metadata.namespace === namespace && f.metadata.name === name);

const ref = (name: string, over: Partial<ExtensionRef> = {}): ExtensionRef => ({
  group: 'ambit.dev',
  kind: 'HTTPFault',
  name,
  namespace: 'shop',
  ...over,
});

/** A random source that returns `values` in turn and fails the test if asked for more. */
function draws(...values: number[]): { random: () => number; used: () => number } {
  let i = 0;
  return {
    random: () => {
      assert.ok(i < values.length, `random() called ${i + 1} times, only ${values.length} values given`);
      return values[i++]!;
    },
    used: () => i,
  };
}

const abort = (status: number, grpcStatus: number, flags = 'FI') => ({
  status,
  grpcStatus,
  body: 'fault filter abort',
  flags,
});

interface Row {
  name: string;
  refs: ExtensionRef[];
  random: number[];
  want: FaultResult;
}

const rows: Row[] = [
  { name: 'no refs: nothing', refs: [], random: [], want: { flags: [] } },
  {
    name: 'delay only, default 100%',
    refs: [ref('delay')],
    random: [0.999],
    want: { delayMs: 5000, flags: ['DI'] },
  },
  {
    name: 'delay at 50%, drawn 0.49',
    refs: [ref('delay-half')],
    random: [0.49],
    want: { delayMs: 250, flags: ['DI'] },
  },
  { name: 'delay at 50%, drawn 0.5', refs: [ref('delay-half')], random: [0.5], want: { flags: [] } },
  { name: 'delay at 0%, drawn 0', refs: [ref('delay-never')], random: [0], want: { flags: [] } },
  {
    name: 'abort only, default 100%',
    refs: [ref('abort')],
    random: [0.999],
    want: { abort: abort(503, 14), flags: ['FI'] },
  },
  {
    name: 'abort at 50%, drawn 0.25',
    refs: [ref('abort-half')],
    random: [0.25],
    want: { abort: abort(500, 2), flags: ['FI'] },
  },
  { name: 'abort at 50%, drawn 0.75', refs: [ref('abort-half')], random: [0.75], want: { flags: [] } },
  { name: 'abort at 0%, drawn 0', refs: [ref('abort-never')], random: [0], want: { flags: [] } },
  {
    name: 'both: delay and abort fire',
    refs: [ref('both')],
    random: [0.1, 0.1],
    want: { delayMs: 1000, abort: abort(429, 14, 'DI,FI'), flags: ['DI', 'FI'] },
  },
  {
    name: 'both: only the delay fires',
    refs: [ref('both')],
    random: [0.1, 0.9],
    want: { delayMs: 1000, flags: ['DI'] },
  },
  {
    name: 'both: only the abort fires',
    refs: [ref('both')],
    random: [0.9, 0.1],
    want: { abort: abort(429, 14), flags: ['FI'] },
  },
  { name: 'both: neither fires', refs: [ref('both')], random: [0.9, 0.9], want: { flags: [] } },
  {
    name: 'two HTTPFaults: delays add up',
    refs: [ref('delay'), ref('delay-half')],
    random: [0, 0],
    want: { delayMs: 5250, flags: ['DI'] },
  },
  {
    name: 'two HTTPFaults: the first abort ends the chain (the second is not sampled)',
    refs: [ref('abort'), ref('delay')],
    random: [0],
    want: { abort: abort(503, 14), flags: ['FI'] },
  },
  {
    name: 'gRPC status by name: HTTP 200, grpc-status 14',
    refs: [ref('grpc-name')],
    random: [0],
    want: { abort: abort(200, 14), flags: ['FI'] },
  },
  {
    name: 'gRPC status by number: HTTP 200, grpc-status 5',
    refs: [ref('grpc-number')],
    random: [0],
    want: { abort: abort(200, 5), flags: ['FI'] },
  },
  {
    name: 'a ref to another group is invalid',
    refs: [ref('abort', { group: 'example.com' })],
    random: [],
    want: {
      invalid:
        'ExtensionRef example.com/HTTPFault shop/abort: Ambit resolves only ambit.dev/HTTPFault filters',
    },
  },
  {
    name: 'a ref to another kind is invalid',
    refs: [ref('abort', { kind: 'RateLimitPolicy' })],
    random: [],
    want: {
      invalid:
        'ExtensionRef ambit.dev/RateLimitPolicy shop/abort: Ambit resolves only ambit.dev/HTTPFault filters',
    },
  },
  {
    name: 'a ref in the core group is invalid',
    refs: [ref('abort', { group: '' })],
    random: [],
    want: {
      invalid: 'ExtensionRef core/HTTPFault shop/abort: Ambit resolves only ambit.dev/HTTPFault filters',
    },
  },
  {
    name: 'a ref to a missing HTTPFault is invalid',
    refs: [ref('nope')],
    random: [],
    want: { invalid: 'ExtensionRef ambit.dev/HTTPFault shop/nope: no such HTTPFault' },
  },
  {
    name: "an HTTPFault of another namespace is not the route's",
    refs: [ref('in-other-ns')],
    random: [],
    want: { invalid: 'ExtensionRef ambit.dev/HTTPFault shop/in-other-ns: no such HTTPFault' },
  },
  {
    name: 'one invalid ref among valid ones makes the whole result invalid, before any sampling',
    refs: [ref('delay'), ref('nope')],
    random: [],
    want: { invalid: 'ExtensionRef ambit.dev/HTTPFault shop/nope: no such HTTPFault' },
  },
];

describe('waypoint fault injection', () => {
  for (const row of rows) {
    test(row.name, () => {
      const r = draws(...row.random);
      assert.deepEqual(faultFor(row.refs, lookup, r.random), row.want);
      assert.equal(r.used(), row.random.length, 'every given random value is drawn');
    });
  }

  test('a fault at 50% fires on about half of many requests', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let delayed = 0;
    for (let i = 0; i < 10_000; i++) {
      const out = faultFor([ref('delay-half')], lookup, random);
      if ('delayMs' in out && out.delayMs !== undefined) delayed++;
    }
    assert.ok(delayed > 4500 && delayed < 5500, `delayed ${delayed} of 10000`);
  });

  test('abort replies: text for HTTP, trailers-only grpc-status for gRPC', () => {
    const http503 = abort(503, 14);
    assert.deepEqual(abortReply(http503, false), {
      status: 503,
      headers: { 'content-type': 'text/plain' },
      body: 'fault filter abort',
      flags: 'FI',
    });
    assert.deepEqual(abortReply(http503, true), {
      status: 200,
      headers: {
        'content-type': 'application/grpc',
        'grpc-status': '14',
        'grpc-message': 'fault filter abort',
      },
      body: '',
      flags: 'FI',
    });
    // A grpcStatus abort of a request that is not gRPC is a plain 200, as Envoy sends it.
    assert.equal(abortReply(abort(200, 5), false).status, 200);
    assert.equal(abortReply(abort(200, 5, 'DI,FI'), true).headers['grpc-status'], '5');
  });

  test('an unresolvable filter is answered 500 (gRPC: UNKNOWN, the code Envoy maps 500 to)', () => {
    assert.equal(invalidFilterReply(false).status, 500);
    const grpc = invalidFilterReply(true);
    assert.equal(grpc.status, 200);
    assert.equal(grpc.headers['grpc-status'], '2');
  });

  test("Envoy's HTTP to gRPC status mapping and gRPC code names", () => {
    const table: Array<[number, number]> = [
      [400, 13],
      [401, 16],
      [403, 7],
      [404, 12],
      [429, 14],
      [500, 2],
      [502, 14],
      [503, 14],
      [504, 14],
      [418, 2],
    ];
    for (const [http, grpc] of table) assert.equal(httpToGrpcStatus(http), grpc, `HTTP ${http}`);
    assert.equal(grpcStatusCode('OK'), 0);
    assert.equal(grpcStatusCode('UNAUTHENTICATED'), 16);
    assert.equal(grpcStatusCode('Unavailable'), undefined);
    assert.equal(grpcStatusCode('toString'), undefined);
    assert.equal(grpcStatusCode(16), 16);
    assert.equal(grpcStatusCode(17), undefined);
  });
});
