// Property tests of resource validation (src/config: validateResource, which the admin API uses, and
// parseManifests, which the CLI uses): arbitrary input only ever yields issues, every issue's path
// names a field of the input, and valid resources of the main kinds are accepted and stable.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  formatPath,
  isWorkloadAddress,
  KINDS,
  parseManifests,
  validateResource,
} from '../../src/config/index.ts';

// --- does an issue path name a field of the input? --------------------------------------------------

/** True when some chain of real keys of `value` formats (as issues write paths) to exactly `path`. */
function resolves(value: unknown, path: string, prefix: PropertyKey[] = []): boolean {
  const here = formatPath(prefix);
  if (here === path) return true;
  if (!path.startsWith(here) || typeof value !== 'object' || value === null) return false;
  const keys: PropertyKey[] = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return keys.some((k) =>
    resolves((value as Record<PropertyKey, unknown>)[k as string], path, [...prefix, k]),
  );
}

/** The path without its last segment, by formatting every shorter prefix that `resolves` accepts. */
function parentResolves(value: unknown, path: string): boolean {
  if (path === '') return true;
  // The parent is the longest resolvable proper prefix that ends where a segment ends.
  for (let i = path.length - 1; i >= 0; i--) {
    if (i === 0 || path[i] === '.' || path[i] === '[') {
      if (resolves(value, path.slice(0, i))) return true;
    }
  }
  return false;
}

// --- generators -----------------------------------------------------------------------------------

const KIND_NAMES = KINDS.map((k) => k.kind);
const FIELD_NAMES = [
  'name',
  'namespace',
  'labels',
  'annotations',
  'selector',
  'ports',
  'port',
  'targetPort',
  'clusterIP',
  'clusterIPs',
  'address',
  'serviceAccount',
  'node',
  'rules',
  'from',
  'to',
  'when',
  'action',
  'mtls',
  'mode',
  'portLevelMtls',
  'targetRefs',
  'parentRefs',
  'hostnames',
  'matches',
  'backendRefs',
  'host',
  'trafficPolicy',
  'spec',
  'metadata',
  'kind',
  'apiVersion',
  'status',
  'conditions',
  'items',
];
const key = fc.oneof(fc.constantFrom(...FIELD_NAMES), fc.string({ maxLength: 8 }));
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -70000, max: 70000 }),
    fc.double(),
    fc.string({ maxLength: 12 }),
    fc.constantFrom('v1', 'None', '198.18.0.1', 'TCP', 'ALLOW', 'STRICT', 'a', ''),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Objects shaped like resources, so validation gets past the envelope into each kind's spec. */
const resourceLike = fc.record(
  {
    apiVersion: fc.oneof(fc.constantFrom(...KINDS.flatMap((k) => k.acceptedApiVersions)), json),
    kind: fc.oneof(fc.constantFrom(...KIND_NAMES), json),
    metadata: fc.oneof(
      fc.record(
        { name: fc.oneof(fc.constantFrom('web', 'a', 'Bad_Name'), json), namespace: json, labels: json },
        { requiredKeys: [] },
      ),
      json,
    ),
    spec: json,
    status: json,
  },
  { requiredKeys: [] },
);
const anything = fc.oneof(json, resourceLike);

// --- valid resources of the main kinds -------------------------------------------------------------

const dnsLabel = fc.stringMatching(/^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$/);
const labelKey = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?$/),
  fc.constantFrom('app', 'istio.io/dataplane-mode', 'ambit.dev/x', 'app.kubernetes.io/name'),
);
const labelValue = fc.oneof(
  fc.constant(''),
  fc.stringMatching(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?$/),
);
const labels = fc.dictionary(labelKey, labelValue, { maxKeys: 4 });
const port = fc.integer({ min: 1, max: 65535 });

const namespace = fc.record({
  apiVersion: fc.constant('v1'),
  kind: fc.constant('Namespace'),
  metadata: fc.record({ name: dnsLabel, labels }, { requiredKeys: ['name'] }),
});

const service = fc.record({
  apiVersion: fc.constant('v1'),
  kind: fc.constant('Service'),
  metadata: fc.record({ name: dnsLabel, namespace: dnsLabel, labels }, { requiredKeys: ['name'] }),
  spec: fc.record(
    {
      selector: labels,
      ports: fc
        .uniqueArray(port, { minLength: 1, maxLength: 4 })
        .map((ps) =>
          ps.map((p, i) => ({ name: `p${i}`, port: p, targetPort: p, protocol: 'TCP', appProtocol: 'http' })),
        ),
      clusterIP: fc.oneof(fc.constant(''), fc.constant('None'), fc.ipV4()),
    },
    { requiredKeys: ['ports'] },
  ),
});

const workloadEntry = fc.record({
  apiVersion: fc.constantFrom('networking.istio.io/v1', 'networking.istio.io/v1beta1'),
  kind: fc.constant('WorkloadEntry'),
  metadata: fc.record({ name: dnsLabel, namespace: dnsLabel }, { requiredKeys: ['name'] }),
  spec: fc.record(
    {
      // A workload's address is a unicast address of one host (not unspecified, link-local, multicast…).
      address: fc.oneof(fc.ipV4(), fc.ipV6()).filter(isWorkloadAddress),
      labels,
      serviceAccount: dnsLabel,
      ports: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9]{0,9}$/), port, { maxKeys: 3 }),
      node: dnsLabel,
    },
    { requiredKeys: ['address'] },
  ),
});

const peerAuthentication = fc.record({
  apiVersion: fc.constant('security.istio.io/v1'),
  kind: fc.constant('PeerAuthentication'),
  metadata: fc.record({ name: dnsLabel, namespace: dnsLabel }, { requiredKeys: ['name'] }),
  spec: fc.record(
    {
      selector: fc.record({ matchLabels: labels }),
      mtls: fc.record({ mode: fc.constantFrom('STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET') }),
    },
    { requiredKeys: [] },
  ),
});

const valid = fc.oneof(namespace, service, workloadEntry, peerAuthentication);

// --- properties -----------------------------------------------------------------------------------

describe('resource validation (property)', () => {
  test('arbitrary JSON values yield a resource or issues, never a throw; issues name real fields', () => {
    fc.assert(
      fc.property(anything, (input) => {
        const result = validateResource(input);
        if (result.ok) return;
        assert.ok(result.errors.length > 0);
        for (const issue of result.errors) {
          assert.equal(typeof issue.message, 'string');
          assert.ok(issue.message.length > 0);
          assert.ok(
            parentResolves(input, issue.path),
            `issue path "${issue.path}" (${issue.message}) is not under a field of ${JSON.stringify(input)}`,
          );
          // A missing field is named by its path too; anything else must name a field that is there.
          if (!/required|got nothing/.test(issue.message))
            assert.ok(
              resolves(input, issue.path),
              `issue path "${issue.path}" (${issue.message}) names no field`,
            );
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('arbitrary text gives resources and issues, never a throw', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      anything.map((v) => JSON.stringify(v) ?? ''),
      fc
        .array(
          fc.constantFrom(
            '---\n',
            'kind: ',
            'Service',
            'List',
            'items:',
            '\n',
            '  - ',
            '{',
            '}',
            '&a ',
            '*a',
            ': ',
            '[',
            ']',
            '"',
          ),
          {
            maxLength: 30,
          },
        )
        .map((a) => a.join('')),
    );
    fc.assert(
      fc.property(text, (t) => {
        const parsed = parseManifests(t, 'input.yaml');
        assert.ok(Array.isArray(parsed.resources) && Array.isArray(parsed.errors));
        for (const e of parsed.errors) assert.match(e.source ?? '', /^input\.yaml/);
      }),
      { numRuns: 1000 },
    );
  });

  test('a YAML alias that names no anchor is a YAML issue, not a throw', () => {
    const text = fc
      .tuple(fc.constantFrom('', 'kind: ', '- ', 'a: [', 'x: &b 1\ny: '), fc.stringMatching(/^[a-z]{1,4}$/))
      .map(([before, name]) => `${before}*${name}`);
    fc.assert(
      fc.property(text, (t) => {
        const parsed = parseManifests(t, 'input.yaml');
        assert.ok(parsed.errors.length > 0 || parsed.resources.length === 0);
      }),
      { numRuns: 100 },
    );
  });

  test('valid resources of the main kinds are accepted, and validating the result changes nothing', () => {
    fc.assert(
      fc.property(valid, (input) => {
        const first = validateResource(input);
        assert.ok(first.ok, JSON.stringify(!first.ok && first.errors));
        const again = validateResource(structuredClone(first.resource));
        assert.ok(again.ok, JSON.stringify(!again.ok && again.errors));
        assert.deepEqual(again.resource, first.resource);
        assert.deepEqual(again.conditions, first.conditions);
      }),
      { numRuns: 500 },
    );
  });

  test('the CLI path (a manifest file) and the API path (an object) agree', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(valid, anything), { minLength: 1, maxLength: 4 }), (inputs) => {
        const text = inputs.map((v) => JSON.stringify(v)).join('\n---\n');
        const parsed = parseManifests(text, 'm.yaml');
        const direct = inputs.flatMap((v) => {
          if (v === null) return []; // an empty document is skipped
          const r = validateResource(v);
          return r.ok ? [r.resource] : [];
        });
        // A `kind: List` document expands into its items; compare only when there is none.
        if (
          inputs.some((v) => typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'List')
        )
          return;
        assert.deepEqual(parsed.resources, direct);
      }),
      { numRuns: 200 },
    );
  });
});
