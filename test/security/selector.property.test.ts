// Property tests of the label selector parser (src/control/api/selector.ts), the `?labelSelector=`
// query of the admin API, against a tiny reference model of Kubernetes' selector semantics.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseLabelSelector } from '../../src/control/index.ts';
import { hasCode } from '../../src/errors/index.ts';

const BAD = 'AMBIT_ERR_API_BAD_SELECTOR';

// --- the reference model -------------------------------------------------------------------------

type Req =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'absent'; key: string };
type Labels = Record<string, string>;

function holds(r: Req, labels: Labels): boolean {
  const v = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
  switch (r.op) {
    case 'eq':
      return v === r.value;
    case 'neq':
      return v !== r.value; // Kubernetes: a missing key satisfies !=
    case 'in':
      return v !== undefined && r.values.includes(v);
    case 'notin':
      return v === undefined || !r.values.includes(v); // and notin
    case 'exists':
      return v !== undefined;
    case 'absent':
      return v === undefined;
  }
}

const modelMatches = (reqs: Req[], labels: Labels) => reqs.every((r) => holds(r, labels));

// --- generators ----------------------------------------------------------------------------------

const KEYS = ['app', 'tier', 'ambit.dev/registered-by', 'x-y', 'a_b.c', 'k8s.io/name', 'constructor'];
const VALUES = ['', 'web', 'db', 'v1.2', 'a-b_c', 'X'];
const key = fc.constantFrom(...KEYS);
const value = fc.constantFrom(...VALUES);
const setValues = fc.uniqueArray(fc.constantFrom(...VALUES.filter((v) => v !== '')), {
  minLength: 1,
  maxLength: 3,
});
const sp = fc.constantFrom('', ' ', '  ');

const req: fc.Arbitrary<Req> = fc.oneof(
  fc.record({ op: fc.constantFrom('eq' as const, 'neq' as const), key, value }),
  fc.record({ op: fc.constantFrom('in' as const, 'notin' as const), key, values: setValues }),
  fc.record({ op: fc.constantFrom('exists' as const, 'absent' as const), key }),
);

/** Renders a requirement the ways kubectl users write it: `=` or `==`, with or without spaces. */
function render(r: Req): fc.Arbitrary<string> {
  switch (r.op) {
    case 'eq':
      return fc
        .tuple(fc.constantFrom('=', '=='), sp, sp)
        .map(([op, a, b]) => `${r.key}${a}${op}${b}${r.value}`);
    case 'neq':
      return fc.tuple(sp, sp).map(([a, b]) => `${r.key}${a}!=${b}${r.value}`);
    case 'in':
    case 'notin':
      return fc
        .tuple(sp, sp)
        .map(([a, b]) => `${r.key} ${r.op}${a}(${r.values.map((v) => `${b}${v}${b}`).join(',')})`);
    case 'exists':
      return fc.constant(r.key);
    case 'absent':
      return fc.constant(`!${r.key}`);
  }
}

const selector = fc
  .array(req, { maxLength: 5 })
  .chain((reqs) =>
    fc
      .tuple(...reqs.map(render), fc.constantFrom(',', ', ', ' , '))
      .map((parts) => ({ reqs, text: parts.slice(0, -1).join(parts.at(-1)) })),
  );
const labels = fc.dictionary(key, value, { maxKeys: KEYS.length });

function parseOrRefuse(text: string): ReturnType<typeof parseLabelSelector> | undefined {
  try {
    return parseLabelSelector(text);
  } catch (err) {
    if (hasCode(err, BAD)) return undefined;
    throw err;
  }
}

// --- properties ----------------------------------------------------------------------------------

describe('label selector parser (property)', () => {
  test('a generated selector means what the reference model says it means', () => {
    fc.assert(
      fc.property(selector, fc.array(labels, { minLength: 1, maxLength: 8 }), ({ reqs, text }, sets) => {
        const match = parseLabelSelector(text);
        for (const l of sets)
          assert.equal(match(l), modelMatches(reqs, l), `${text} on ${JSON.stringify(l)}`);
        assert.equal(match(undefined), modelMatches(reqs, {}));
      }),
      { numRuns: 1000 },
    );
  });

  test('arbitrary strings give a selector or AMBIT_ERR_API_BAD_SELECTOR, never a crash', () => {
    const alphabet = fc.constantFrom(...'ab=!,() \t/.-_in', 'in', 'notin', '==', '!=');
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.array(alphabet, { maxLength: 20 }).map((a) => a.join('')),
    );
    fc.assert(
      fc.property(text, labels, (t, l) => {
        const match = parseOrRefuse(t);
        if (match !== undefined) assert.equal(typeof match(l), 'boolean');
      }),
      { numRuns: 1000 },
    );
  });

  // Kubernetes refuses these (labels.Parse): a key or value that is not a valid label key or value
  // can never match anything, and accepting it silently hides the typo from the operator.
  const refusals: [string, fc.Arbitrary<string>][] = [
    [
      'a set value that is not a label value',
      fc
        .tuple(key, value, fc.constantFrom('a b', 'a=b', 'x!', '(a', '-a', 'a-', 'ü', 'a\tb'))
        .map(([k, v, bad]) => `${k} in (${v || 'web'},${bad})`),
    ],
    [
      'an empty set',
      fc.tuple(key, fc.constantFrom('in', 'notin'), sp).map(([k, op, s]) => `${k} ${op} (${s})`),
    ],
    [
      'a key that is not a label key',
      fc
        .tuple(fc.constantFrom('-a', 'a-', '/a', 'a/', 'a//b', 'A_/b', `${'k'.repeat(64)}`), value)
        .map(([k, v]) => `${k}=${v}`),
    ],
    [
      'a value that is not a label value',
      fc.tuple(key, fc.constantFrom('-a', 'a-', 'v'.repeat(64))).map(([k, v]) => `${k}=${v}`),
    ],
  ];
  for (const [what, gen] of refusals) {
    test(`refuses ${what}`, () => {
      fc.assert(
        fc.property(gen, (t) => {
          assert.equal(parseOrRefuse(t), undefined, `accepted: ${JSON.stringify(t)}`);
        }),
        { numRuns: 200 },
      );
    });
  }
});
