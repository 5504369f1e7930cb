// `ambit waypoint`'s decisions as tables: the Gateway it writes, flag validation, merging over an
// existing Gateway, namespace enrollment, and what list/status print from a Gateway's status.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AdminClient } from '../../../src/cli/client.ts';
import {
  enrolledNamespace,
  enrollmentConflict,
  listTable,
  mergeWaypoint,
  parseNamespace,
  parseOutput,
  parseReplicas,
  parseTimeout,
  parseWaypointFor,
  parseWaypointName,
  shownCondition,
  statusTable,
  type WaypointGateway,
  waitProgrammed,
  waypointCommand,
  waypointGateway,
} from '../../../src/cli/waypoint.ts';
import type { NamespaceResource } from '../../../src/config/index.ts';
import { validateResource } from '../../../src/config/index.ts';
import { hasCode } from '../../../src/errors/index.ts';

const MESH = { name: 'mesh', port: 15008, protocol: 'HBONE' };

describe('waypointGateway: the Gateway istioctl waypoint apply writes', () => {
  const cases: Array<{ what: string; spec: Parameters<typeof waypointGateway>[0]; metadata: object }> = [
    {
      what: 'defaults: no labels, no annotations (istiod picks service)',
      spec: { namespace: 'default', name: 'waypoint' },
      metadata: { name: 'waypoint', namespace: 'default' },
    },
    {
      what: '--for workload',
      spec: { namespace: 'shop', name: 'wp', for: 'workload' },
      metadata: { name: 'wp', namespace: 'shop', labels: { 'istio.io/waypoint-for': 'workload' } },
    },
    {
      what: '--replicas 3',
      spec: { namespace: 'shop', name: 'wp', replicas: 3 },
      metadata: { name: 'wp', namespace: 'shop', annotations: { 'ambit.dev/waypoint-replicas': '3' } },
    },
    {
      what: '--for none --replicas 1',
      spec: { namespace: 'a', name: 'b', for: 'none', replicas: 1 },
      metadata: {
        name: 'b',
        namespace: 'a',
        labels: { 'istio.io/waypoint-for': 'none' },
        annotations: { 'ambit.dev/waypoint-replicas': '1' },
      },
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      const gw = waypointGateway(c.spec);
      assert.deepEqual(gw, {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: c.metadata,
        spec: { gatewayClassName: 'istio-waypoint', listeners: [MESH] },
      });
      // What it writes is a valid Gateway for Ambit's own validation.
      const result = validateResource(gw);
      assert.ok(result.ok, JSON.stringify(result));
    });
  }
});

describe('flags are refused naming the flag, with a stable code', () => {
  const refused: Array<[string, () => unknown, string, RegExp]> = [
    [
      '--name none',
      () => parseWaypointName('none'),
      'AMBIT_ERR_CLI_WAYPOINT_BAD_NAME',
      /--name "none" is reserved/,
    ],
    ['--name Upper', () => parseWaypointName('Upper'), 'AMBIT_ERR_CLI_WAYPOINT_BAD_NAME', /--name "Upper"/],
    ['--name a/b', () => parseWaypointName('a/b'), 'AMBIT_ERR_CLI_WAYPOINT_BAD_NAME', /--name/],
    ['--name 64 chars', () => parseWaypointName('a'.repeat(64)), 'AMBIT_ERR_CLI_WAYPOINT_BAD_NAME', /63/],
    ['-n with dots', () => parseNamespace('a.b'), 'AMBIT_ERR_CLI_BAD_NAMESPACE', /-n\/--namespace "a\.b"/],
    [
      '--for pods',
      () => parseWaypointFor('pods'),
      'AMBIT_ERR_CLI_WAYPOINT_BAD_FOR',
      /--for "pods".*service, workload, all, none/,
    ],
    [
      '--replicas 0',
      () => parseReplicas('0'),
      'AMBIT_ERR_CLI_WAYPOINT_BAD_REPLICAS',
      /--replicas .* 1 to 10/,
    ],
    ['--replicas 11', () => parseReplicas('11'), 'AMBIT_ERR_CLI_WAYPOINT_BAD_REPLICAS', /"11"/],
    ['--replicas 2.5', () => parseReplicas('2.5'), 'AMBIT_ERR_CLI_WAYPOINT_BAD_REPLICAS', /"2\.5"/],
    ['--replicas two', () => parseReplicas('two'), 'AMBIT_ERR_CLI_WAYPOINT_BAD_REPLICAS', /"two"/],
    ['--timeout 5', () => parseTimeout('5'), 'AMBIT_ERR_CLI_BAD_DURATION', /--timeout "5"/],
    ['--timeout 0s', () => parseTimeout('0s'), 'AMBIT_ERR_CLI_BAD_DURATION', /--timeout/],
    ['-o wide', () => parseOutput('wide'), 'AMBIT_ERR_CLI_BAD_OUTPUT', /-o\/--output "wide"/],
  ];
  for (const [what, fn, code, message] of refused) {
    test(what, () => {
      assert.throws(fn, (err: unknown) => hasCode(err, code) && message.test((err as Error).message));
    });
  }
  test('good values pass through', () => {
    assert.equal(parseWaypointName('reviews-wp'), 'reviews-wp');
    assert.equal(parseWaypointName('a.b'), 'a.b');
    assert.equal(parseNamespace('shop'), 'shop');
    assert.equal(parseWaypointFor('all'), 'all');
    assert.equal(parseReplicas('1'), 1);
    assert.equal(parseReplicas('10'), 10);
    assert.equal(parseTimeout('90s'), 90_000);
    assert.equal(parseTimeout('1m30s'), 90_000);
    assert.equal(parseOutput('yaml'), 'yaml');
  });
  test('through commander, a bad flag surfaces as the AmbitError (not a usage error)', async () => {
    const cmd = waypointCommand();
    for (const c of [cmd, ...cmd.commands]) c.exitOverride();
    await assert.rejects(cmd.parseAsync(['apply', '--replicas', '99'], { from: 'user' }), (err: unknown) =>
      hasCode(err, 'AMBIT_ERR_CLI_WAYPOINT_BAD_REPLICAS'),
    );
    await assert.rejects(
      cmd.parseAsync(['delete', 'a', '--all', '--server', 'unix:/nonexistent'], { from: 'user' }),
      (err: unknown) => hasCode(err, 'AMBIT_ERR_CLI_USAGE') && /--all/.test((err as Error).message),
    );
  });
});

const gateway = (over: Partial<WaypointGateway> & { class?: string } = {}): WaypointGateway => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name: 'waypoint', namespace: 'default', ...over.metadata },
  spec: { gatewayClassName: over.class ?? 'istio-waypoint', listeners: [MESH], ...over.spec },
  ...(over.status ? { status: over.status } : {}),
});

describe('mergeWaypoint: apply over a Gateway of the same name', () => {
  test('nothing there: the desired Gateway as built', () => {
    const desired = waypointGateway({ namespace: 'default', name: 'waypoint' });
    assert.deepEqual(mergeWaypoint(desired, undefined), desired);
  });
  test('keeps labels, annotations, other listeners and an ambit-waypoint class; sets what it owns', () => {
    const existing = gateway({
      class: 'ambit-waypoint',
      metadata: {
        name: 'waypoint',
        namespace: 'default',
        labels: { team: 'a', 'istio.io/waypoint-for': 'service' },
        annotations: { 'ambit.dev/waypoint-replicas': '2', note: 'x' },
      },
      spec: {
        gatewayClassName: 'ambit-waypoint',
        listeners: [
          { name: 'mesh', port: 15009, protocol: 'HBONE' },
          { name: 'extra', port: 80, protocol: 'HTTP' },
        ],
      },
      status: { conditions: [{ type: 'Programmed', status: 'True', reason: 'Programmed', message: '' }] },
    });
    const merged = mergeWaypoint(
      waypointGateway({ namespace: 'default', name: 'waypoint', for: 'all', replicas: 4 }),
      existing,
    );
    assert.deepEqual(merged.metadata, {
      name: 'waypoint',
      namespace: 'default',
      labels: { team: 'a', 'istio.io/waypoint-for': 'all' },
      annotations: { 'ambit.dev/waypoint-replicas': '4', note: 'x' },
    });
    assert.equal(merged.spec.gatewayClassName, 'ambit-waypoint');
    assert.deepEqual(merged.spec.listeners, [MESH, { name: 'extra', port: 80, protocol: 'HTTP' }]);
    assert.equal(merged.status, undefined, 'the status is the control plane’s, never sent back');
  });
  test('a Gateway of another class is refused, not turned into a waypoint', () => {
    assert.throws(
      () =>
        mergeWaypoint(
          waypointGateway({ namespace: 'default', name: 'web' }),
          gateway({ class: 'istio', metadata: { name: 'web', namespace: 'default' } }),
        ),
      (err: unknown) =>
        hasCode(err, 'AMBIT_ERR_CLI_NOT_A_WAYPOINT') &&
        /default\/web is of class "istio"/.test((err as Error).message),
    );
  });
});

describe('namespace enrollment', () => {
  const ns = (labels?: Record<string, string>): NamespaceResource => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'shop', ...(labels ? { labels } : {}) },
  });
  const conflicts: Array<[string, NamespaceResource, string, boolean, RegExp | undefined]> = [
    ['no label', ns(), 'waypoint', false, undefined],
    ['the same waypoint', ns({ 'istio.io/use-waypoint': 'waypoint' }), 'waypoint', false, undefined],
    [
      'another waypoint',
      ns({ 'istio.io/use-waypoint': 'old' }),
      'waypoint',
      false,
      /already uses waypoint old.*--overwrite/,
    ],
    ['another waypoint, --overwrite', ns({ 'istio.io/use-waypoint': 'old' }), 'waypoint', true, undefined],
    [
      'the same name in another namespace',
      ns({ 'istio.io/use-waypoint': 'waypoint', 'istio.io/use-waypoint-namespace': 'infra' }),
      'waypoint',
      false,
      /already uses waypoint infra\/waypoint/,
    ],
  ];
  for (const [what, namespace, name, overwrite, expected] of conflicts) {
    test(`conflict: ${what}`, () => {
      const got = enrollmentConflict(namespace, name, overwrite);
      if (expected) assert.match(got ?? '', expected);
      else assert.equal(got, undefined);
    });
  }
  test('the label is added and the other labels and annotations are kept', () => {
    const before: NamespaceResource = {
      ...ns({ 'istio.io/dataplane-mode': 'ambient', team: 'a', 'istio.io/use-waypoint-namespace': 'infra' }),
      metadata: {
        name: 'shop',
        labels: {
          'istio.io/dataplane-mode': 'ambient',
          team: 'a',
          'istio.io/use-waypoint-namespace': 'infra',
        },
        annotations: { owner: 'me' },
      },
    };
    assert.deepEqual(enrolledNamespace(before, 'wp'), {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'shop',
        labels: { 'istio.io/dataplane-mode': 'ambient', team: 'a', 'istio.io/use-waypoint': 'wp' },
        annotations: { owner: 'me' },
      },
    });
  });
});

describe('what list and status print from the status', () => {
  const programmed = gateway({
    metadata: {
      name: 'a',
      namespace: 'shop',
      labels: { 'istio.io/waypoint-for': 'all', 'istio.io/rev': 'canary' },
    },
    status: {
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'accepted' },
        { type: 'Programmed', status: 'True', reason: 'Programmed', message: '2 replicas running' },
      ],
      addresses: [{ type: 'IPAddress', value: '198.18.1.7' }],
    },
  });
  const failing = gateway({
    metadata: { name: 'b', namespace: 'shop' },
    status: {
      conditions: [
        { type: 'Programmed', status: 'False', reason: 'NoResources', message: 'no node can run it' },
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'accepted' },
      ],
    },
  });
  const pending = gateway({
    metadata: { name: 'c', namespace: 'shop' },
    status: { conditions: [{ type: 'Accepted', status: 'Unknown', reason: 'Pending', message: 'not yet' }] },
  });
  const bare = gateway({ metadata: { name: 'd', namespace: 'shop' } });

  test('shownCondition: Programmed, else the last reported, else a placeholder', () => {
    assert.equal(shownCondition(programmed).reason, 'Programmed');
    assert.equal(shownCondition(failing).reason, 'NoResources');
    assert.deepEqual(shownCondition(pending), pending.status?.conditions?.[0]);
    assert.deepEqual(
      { type: shownCondition(bare).type, status: shownCondition(bare).status },
      { type: 'Programmed', status: 'Unknown' },
    );
  });
  test('list: NAME REVISION TRAFFIC TYPE PROGRAMMED, NAMESPACE first with -A', () => {
    const rows = (s: string) => s.split('\n').map((l) => l.split(/\s{2,}/));
    assert.deepEqual(rows(listTable([programmed, failing, pending], false)), [
      ['NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'],
      ['a', 'canary', 'all', 'True'],
      ['b', 'default', 'service', 'False'],
      ['c', 'default', 'service', 'False'],
    ]);
    assert.deepEqual(rows(listTable([programmed], true)), [
      ['NAMESPACE', 'NAME', 'REVISION', 'TRAFFIC TYPE', 'PROGRAMMED'],
      ['shop', 'a', 'canary', 'all', 'True'],
    ]);
  });
  test('status: NAMESPACE NAME STATUS TYPE REASON MESSAGE', () => {
    const lines = statusTable([programmed, failing, pending]).split('\n');
    assert.deepEqual(lines[0]?.split(/\s+/), ['NAMESPACE', 'NAME', 'STATUS', 'TYPE', 'REASON', 'MESSAGE']);
    assert.match(lines[1] ?? '', /^shop\s+a\s+True\s+Programmed\s+Programmed\s+2 replicas running$/);
    assert.match(lines[2] ?? '', /^shop\s+b\s+False\s+Programmed\s+NoResources\s+no node can run it$/);
    assert.match(lines[3] ?? '', /^shop\s+c\s+Unknown\s+Accepted\s+Pending\s+not yet$/);
  });
});

describe('waitProgrammed', () => {
  /** An admin client whose GET answers the next of `answers` (the last one repeats). */
  const fake = (answers: WaypointGateway[]) => {
    let calls = 0;
    const api = {
      call: async () => answers[Math.min(calls++, answers.length - 1)],
    } as unknown as AdminClient;
    return { api, calls: () => calls };
  };
  const notYet = gateway({
    status: {
      conditions: [{ type: 'Programmed', status: 'False', reason: 'Deploying', message: '0/1 replicas' }],
    },
  });
  const ready = gateway({
    status: { conditions: [{ type: 'Programmed', status: 'True', reason: 'Programmed', message: '' }] },
  });

  test('returns once Programmed is True', async () => {
    const f = fake([notYet, notYet, ready]);
    const gw = await waitProgrammed(f.api, 'default', 'waypoint', 5000, 5);
    assert.equal(gw, ready);
    assert.equal(f.calls(), 3);
  });
  test('times out with the last condition it read', async () => {
    const f = fake([notYet]);
    await assert.rejects(waitProgrammed(f.api, 'default', 'waypoint', 50, 5), (err: unknown) => {
      assert.ok(hasCode(err, 'AMBIT_ERR_CLI_WAYPOINT_TIMEOUT'));
      assert.match(
        (err as Error).message,
        /timed out after 0\.05s waiting for waypoint default\/waypoint to be programmed; Programmed=False \(Deploying\): 0\/1 replicas/,
      );
      return true;
    });
  });
});
