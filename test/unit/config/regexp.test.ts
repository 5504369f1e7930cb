// Regular expressions from configuration run as RE2 would: whole-value matches, constructs RE2 lacks
// refused at apply, and patterns that backtrack badly on V8 still finishing (the linear-time engine takes
// over) — without this, one hostile header would hold a waypoint for minutes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fullMatchRegExp } from '../../../src/config/index.ts';
import { regexProblem } from '../../../src/config/regexp.ts';

describe('configuration regular expressions', () => {
  test('match the whole value', () => {
    assert.equal(fullMatchRegExp('v[0-9]+').test('v12'), true);
    assert.equal(fullMatchRegExp('v[0-9]+').test('xv12'), false);
    assert.equal(fullMatchRegExp('a|b').test('ab'), false);
  });

  test('patterns that backtrack exponentially on V8 still finish on hostile input', () => {
    for (const [pattern, input] of [
      ['.*.*.*.*x', 'a'.repeat(20_000)],
      ['(a|a)*b', 'a'.repeat(64)],
      ['(a*)*b', 'a'.repeat(64)],
    ] as const) {
      assert.equal(fullMatchRegExp(pattern).test(input), false, pattern);
    }
  });

  test('what RE2 cannot run is refused, with the reason', () => {
    assert.match(regexProblem('(?=a)b') ?? '', /lookahead or lookbehind/);
    assert.match(regexProblem('(a)\\1') ?? '', /backreference/);
    assert.match(regexProblem('([') ?? '', /not a valid regular expression/);
    assert.equal(regexProblem('^/api/v[0-9]+/.*$'), undefined);
  });
});
