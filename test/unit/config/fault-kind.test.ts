// HTTPFault (ambit.dev/v1alpha1) validation as a table: Istio's HTTPFaultInjection shape, every bad
// field reported at its path, and the kind's place in the catalogue.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kindByCliName, kindByPlural, kindInfo, validateResource } from '../../../src/config/index.ts';
import { type Case, res, runCase } from './helpers.ts';

const hf = (spec: unknown) => res('ambit.dev/v1alpha1', 'HTTPFault', 'chaos', spec);

const cases: Case[] = [
  { name: 'delay only', doc: hf({ delay: { fixedDelay: '5s', percentage: { value: 10 } } }), paths: [] },
  { name: 'delay without percentage', doc: hf({ delay: { fixedDelay: '1.5s' } }), paths: [] },
  {
    name: 'abort with httpStatus and a fractional percentage',
    doc: hf({ abort: { httpStatus: 503, percentage: { value: 0.1 } } }),
    paths: [],
  },
  { name: 'abort with a gRPC status name', doc: hf({ abort: { grpcStatus: 'UNAVAILABLE' } }), paths: [] },
  { name: 'abort with a gRPC status number', doc: hf({ abort: { grpcStatus: 14 } }), paths: [] },
  {
    name: 'delay and abort, percentages 0 and 100',
    doc: hf({
      delay: { fixedDelay: '100ms', percentage: { value: 0 } },
      abort: { httpStatus: 500, percentage: { value: 100 } },
    }),
    paths: [],
  },
  { name: 'abort status 200', doc: hf({ abort: { httpStatus: 200 } }), paths: [] },
  { name: 'abort status 599', doc: hf({ abort: { httpStatus: 599 } }), paths: [] },
  { name: 'empty spec', doc: hf({}), paths: ['spec'], messages: { spec: 'needs a delay, an abort or both' } },
  { name: 'no spec', doc: hf(undefined), paths: ['spec'] },
  { name: 'unknown spec field', doc: hf({ delay: { fixedDelay: '1s' }, fault: {} }), paths: ['spec.fault'] },
  { name: 'delay without fixedDelay', doc: hf({ delay: {} }), paths: ['spec.delay.fixedDelay'] },
  {
    name: 'delay not a duration',
    doc: hf({ delay: { fixedDelay: '5 seconds' } }),
    paths: ['spec.delay.fixedDelay'],
    messages: { 'spec.delay.fixedDelay': 'must be a duration' },
  },
  {
    name: 'delay of zero',
    doc: hf({ delay: { fixedDelay: '0s' } }),
    paths: ['spec.delay.fixedDelay'],
    messages: { 'spec.delay.fixedDelay': 'at least 1ms' },
  },
  {
    name: 'delay finer than a millisecond',
    doc: hf({ delay: { fixedDelay: '1500us' } }),
    paths: ['spec.delay.fixedDelay'],
    messages: { 'spec.delay.fixedDelay': 'whole number of milliseconds' },
  },
  {
    name: 'delay Istio exponentialDelay (unsupported)',
    doc: hf({ delay: { fixedDelay: '1s', exponentialDelay: '1s' } }),
    paths: ['spec.delay.exponentialDelay'],
    messages: { 'spec.delay.exponentialDelay': 'allowed fields are fixedDelay, percentage' },
  },
  {
    name: 'delay percentage over 100',
    doc: hf({ delay: { fixedDelay: '1s', percentage: { value: 100.5 } } }),
    paths: ['spec.delay.percentage.value'],
    messages: { 'spec.delay.percentage.value': 'from 0 to 100' },
  },
  {
    name: 'abort percentage negative',
    doc: hf({ abort: { httpStatus: 503, percentage: { value: -1 } } }),
    paths: ['spec.abort.percentage.value'],
  },
  {
    name: 'percentage without value',
    doc: hf({ abort: { httpStatus: 503, percentage: {} } }),
    paths: ['spec.abort.percentage.value'],
  },
  {
    name: 'percentage written as a bare number (Istio integer percent)',
    doc: hf({ abort: { httpStatus: 503, percentage: 50 } }),
    paths: ['spec.abort.percentage'],
  },
  {
    name: 'abort without a status',
    doc: hf({ abort: { percentage: { value: 50 } } }),
    paths: ['spec.abort'],
    messages: { 'spec.abort': 'needs httpStatus or grpcStatus' },
  },
  {
    name: 'abort with both statuses',
    doc: hf({ abort: { httpStatus: 503, grpcStatus: 'UNAVAILABLE' } }),
    paths: ['spec.abort.grpcStatus'],
  },
  {
    name: 'abort httpStatus below 200',
    doc: hf({ abort: { httpStatus: 199 } }),
    paths: ['spec.abort.httpStatus'],
    messages: { 'spec.abort.httpStatus': 'from 200 to 599' },
  },
  { name: 'abort httpStatus 600', doc: hf({ abort: { httpStatus: 600 } }), paths: ['spec.abort.httpStatus'] },
  {
    name: 'abort httpStatus as a string',
    doc: hf({ abort: { httpStatus: '503' } }),
    paths: ['spec.abort.httpStatus'],
  },
  {
    name: 'abort gRPC status name in lower case',
    doc: hf({ abort: { grpcStatus: 'unavailable' } }),
    paths: ['spec.abort.grpcStatus'],
    messages: { 'spec.abort.grpcStatus': 'gRPC status code' },
  },
  {
    name: 'abort gRPC status number 17',
    doc: hf({ abort: { grpcStatus: 17 } }),
    paths: ['spec.abort.grpcStatus'],
  },
  {
    name: 'abort Istio http2Error (unsupported)',
    doc: hf({ abort: { http2Error: 'x' } }),
    paths: ['spec.abort', 'spec.abort.http2Error'],
  },
  {
    name: 'wrong apiVersion',
    doc: { ...(hf({ abort: { httpStatus: 503 } }) as object), apiVersion: 'ambit.dev/v1' },
    paths: ['apiVersion'],
  },
];

describe('config: HTTPFault', () => {
  for (const c of cases) {
    it(c.name, () => {
      runCase(c);
    });
  }

  it('is a namespaced ambit.dev/v1alpha1 kind, found by plural and short name', () => {
    const info = kindInfo('HTTPFault');
    assert.equal(info?.apiVersion, 'ambit.dev/v1alpha1');
    assert.equal(info?.namespaced, true);
    assert.equal(kindByPlural('ambit.dev', 'httpfaults')?.kind, 'HTTPFault');
    assert.equal(kindByCliName('hf')?.kind, 'HTTPFault');
    assert.equal(kindByCliName('HTTPFaults')?.kind, 'HTTPFault');
  });

  it('keeps the spec as written (no defaults filled in) and defaults the namespace', () => {
    const doc = res(
      'ambit.dev/v1alpha1',
      'HTTPFault',
      'chaos',
      { abort: { grpcStatus: 'NOT_FOUND' } },
      {
        metadata: { namespace: undefined },
      },
    );
    const result = validateResource(doc);
    assert.ok(result.ok);
    assert.equal(result.resource.metadata.name, 'chaos');
    assert.equal((result.resource.metadata as { namespace?: string }).namespace, 'default');
    assert.deepEqual((result.resource as { spec: unknown }).spec, { abort: { grpcStatus: 'NOT_FOUND' } });
  });
});
