// Property tests of the SPIFFE ID parser (src/identity/spiffe.ts) against the SPIFFE ID spec
// (SPIFFE-ID.md §2): a lower-case trust domain of a-z 0-9 . - _ (at most 255 bytes), a path of
// non-empty segments of A-Z a-z 0-9 . - _ that are not "." or "..", no port, userinfo, query,
// fragment or percent-encoding, at most 2048 bytes in all.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hasCode } from '../../src/errors/index.ts';
import { parseSpiffeId, parseWorkloadId, validateTrustDomain } from '../../src/identity/index.ts';

const INVALID = 'AMBIT_ERR_IDENTITY_INVALID_SPIFFE_ID';
const RUNS = { numRuns: 500 };

const TD_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789.-_';
const SEGMENT_CHARS = `${TD_CHARS}ABCDEFGHIJKLMNOPQRSTUVWXYZ`;

const chars = (alphabet: string, min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...alphabet), minLength: min, maxLength: max });
const trustDomain = chars(TD_CHARS, 1, 40);
const segment = chars(SEGMENT_CHARS, 1, 20).filter((s) => s !== '.' && s !== '..');
const path = fc.array(segment, { maxLength: 6 }).map((segs) => segs.map((s) => `/${s}`).join(''));
const validId = fc.tuple(trustDomain, path).map(([td, p]) => ({ td, path: p, id: `spiffe://${td}${p}` }));

/** Throws anything other than the documented AmbitError: a crash. Returns whether it parsed. */
function parses(input: string): boolean {
  try {
    parseSpiffeId(input);
    return true;
  } catch (err) {
    if (hasCode(err, INVALID)) return false;
    throw err;
  }
}

/** A valid ID with `bad` spliced into its trust domain or path: what the spec says must be refused. */
function spliced(into: 'trustDomain' | 'path', bad: fc.Arbitrary<string>) {
  return fc.tuple(validId, bad, fc.nat()).map(([v, b, at]) => {
    if (into === 'trustDomain') {
      const i = at % (v.td.length + 1);
      return `spiffe://${v.td.slice(0, i)}${b}${v.td.slice(i)}${v.path}`;
    }
    const p = v.path === '' ? '/x' : v.path;
    const i = 1 + (at % p.length);
    return `spiffe://${v.td}${p.slice(0, i)}${b}${p.slice(i)}`;
  });
}

describe('SPIFFE ID parser (property)', () => {
  test('every valid ID parses back to its own trust domain and path, unchanged', () => {
    fc.assert(
      fc.property(validId, ({ td, path: p, id }) => {
        const parsed = parseSpiffeId(id);
        assert.equal(parsed.id, id);
        assert.equal(parsed.trustDomain, td);
        assert.equal(parsed.path, p);
        assert.equal(parseSpiffeId(`spiffe://${parsed.trustDomain}${parsed.path}`).id, id);
      }),
      RUNS,
    );
  });

  test('workload IDs round-trip their namespace and service account', () => {
    const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(trustDomain, label, label, (td, ns, sa) => {
        const parsed = parseWorkloadId(`spiffe://${td}/ns/${ns}/sa/${sa}`);
        assert.equal(parsed.namespace, ns);
        assert.equal(parsed.serviceAccount, sa);
      }),
      RUNS,
    );
  });

  test('arbitrary strings never throw anything but AMBIT_ERR_IDENTITY_INVALID_SPIFFE_ID', () => {
    const anything = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.string({ maxLength: 80 }).map((s) => `spiffe://${s}`),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc.webUrl().map((u) => u.replace(/^https?/, 'spiffe')),
    );
    fc.assert(
      fc.property(anything, (s) => {
        parses(s);
        try {
          parseWorkloadId(s);
        } catch (err) {
          if (!hasCode(err, INVALID)) throw err;
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('anything accepted obeys the spec grammar', () => {
    const near = fc.oneof(
      validId.map((v) => v.id),
      fc
        .string({ unit: fc.constantFrom(...`${SEGMENT_CHARS}/:@%?#[]`), maxLength: 40 })
        .map((s) => `spiffe://${s}`),
    );
    fc.assert(
      fc.property(near, (s) => {
        if (!parses(s)) return;
        assert.match(s, /^spiffe:\/\/[a-z0-9._-]{1,255}(\/[A-Za-z0-9._-]+)*$/);
        assert.ok(!/\/\.\.?(\/|$)/.test(s.slice('spiffe://'.length)), `dot segment accepted: ${s}`);
      }),
      { numRuns: 1000 },
    );
  });

  const refusals: [string, fc.Arbitrary<string>][] = [
    ['percent-encoding in the path', spliced('path', fc.constantFrom('%2F', '%2e', '%41', '%'))],
    ['percent-encoding in the trust domain', spliced('trustDomain', fc.constantFrom('%2e', '%41'))],
    ['a "." or ".." segment', fc.tuple(validId, fc.constantFrom('/.', '/..')).map(([v, d]) => `${v.id}${d}`)],
    [
      'a dot segment in the middle',
      fc.tuple(validId, fc.constantFrom('/./', '/../')).map(([v, d]) => `${v.id}${d}x`),
    ],
    [
      'an empty segment',
      fc.tuple(validId, fc.nat()).map(([v, at]) => {
        const slashes = [...`${v.path}/`.matchAll(/\//g)].map((m) => m.index);
        const i = slashes[at % slashes.length]!;
        return `spiffe://${v.td}${v.path.slice(0, i)}//x${v.path.slice(i)}`;
      }),
    ],
    ['a trailing slash', validId.map((v) => `${v.id}/`)],
    [
      'a port',
      fc.tuple(validId, fc.integer({ min: 0, max: 65535 })).map(([v, p]) => `spiffe://${v.td}:${p}${v.path}`),
    ],
    ['userinfo', fc.tuple(validId, segment).map(([v, u]) => `spiffe://${u}@${v.td}${v.path}`)],
    ['a query', fc.tuple(validId, fc.string({ maxLength: 10 })).map(([v, q]) => `${v.id}?${q}`)],
    ['a fragment', fc.tuple(validId, fc.string({ maxLength: 10 })).map(([v, f]) => `${v.id}#${f}`)],
    [
      'an upper-case scheme',
      fc
        .tuple(validId, fc.constantFrom('SPIFFE', 'Spiffe', 'spiFFe'))
        .map(([v, s]) => `${s}${v.id.slice(6)}`),
    ],
    ['an upper-case trust domain', spliced('trustDomain', chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 1, 3))],
    ['a missing trust domain', path.map((p) => `spiffe://${p}`)],
    ['another scheme', validId.map((v) => v.id.replace(/^spiffe/, 'https'))],
    [
      'a character outside the spec',
      spliced('path', fc.constantFrom(' ', '+', '~', '!', '$', '\0', 'é', '\n')),
    ],
    ['an ID over 2048 bytes', trustDomain.map((td) => `spiffe://${td}/${'a'.repeat(2048)}`)],
    [
      'a trust domain over 255 bytes',
      fc.integer({ min: 256, max: 400 }).map((n) => `spiffe://${'a'.repeat(n)}/ns/x`),
    ],
  ];
  for (const [what, gen] of refusals) {
    test(`refuses ${what}`, () => {
      fc.assert(
        fc.property(gen, (s) => {
          assert.equal(parses(s), false, `accepted: ${JSON.stringify(s)}`);
        }),
        { numRuns: 200 },
      );
    });
  }

  const tdCandidate = fc.oneof(
    fc.string({ unit: fc.constantFrom(...`${TD_CHARS}A:@%`), maxLength: 40 }),
    fc.integer({ min: 250, max: 260 }).map((n) => 'a'.repeat(n)),
  );
  test('a trust domain accepted alone is accepted inside an ID, and the other way round', () => {
    fc.assert(
      fc.property(tdCandidate, (td) => {
        let alone = true;
        try {
          validateTrustDomain(td);
        } catch (err) {
          if (!hasCode(err, 'AMBIT_ERR_IDENTITY_INVALID_TRUST_DOMAIN')) throw err;
          alone = false;
        }
        assert.equal(parses(`spiffe://${td}/ns/a/sa/b`), alone, `trust domain ${JSON.stringify(td)}`);
      }),
      RUNS,
    );
  });
});
