import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLabelSelector } from '../../../src/control/api/selector.ts';
import { hasCode } from '../../../src/errors/index.ts';

test('label selectors as kubectl writes them', () => {
  const labels = { app: 'web', tier: 'front', 'istio.io/rev': 'x' };
  const cases: Array<[string, boolean]> = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['app!=web', false],
    ['missing!=x', true],
    ['tier in (front,back)', true],
    ['tier in (back)', false],
    ['tier notin (back)', true],
    ['missing notin (back)', true],
    ['missing in (back)', false],
    ['app', true],
    ['!app', false],
    ['!missing', true],
    ['istio.io/rev=x', true],
    ['app=web,tier in (a, front),!missing', true],
    ['app=web,tier=back', false],
  ];
  for (const [sel, want] of cases) assert.equal(parseLabelSelector(sel)(labels), want, sel);
  assert.equal(parseLabelSelector('!app')(undefined), true);
  assert.equal(parseLabelSelector('constructor')({}), false, 'inherited properties are not labels');
  assert.equal(parseLabelSelector('!toString')({}), true);
  for (const bad of ['app=web=x', 'a in b', '=x', 'app in (a']) {
    assert.throws(
      () => parseLabelSelector(bad),
      (e) => hasCode(e, 'AMBIT_ERR_API_BAD_SELECTOR'),
      bad,
    );
  }
});
