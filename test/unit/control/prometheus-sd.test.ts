// The Prometheus target files the control plane keeps: which targets the lab's nodes and pods make
// and how they are labelled (a table of cases), and the files following a lab state file as it changes.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  PROMETHEUS_SD_FILES,
  PrometheusTargetFiles,
  promLabelName,
  scrapeTargets,
} from '../../../src/control/prometheus-sd.ts';
import { Lab } from '../../../src/lab/index.ts';

const WAYPOINT_LABELS = {
  'gateway.networking.k8s.io/gateway-name': 'waypoint',
  'ambit.dev/waypoint-replica': '0',
};

describe('scrapeTargets', () => {
  test('a ztunnel per node, a waypoint per replica pod, the control plane when it has a TCP listener', () => {
    const got = scrapeTargets({
      nodes: [
        { name: 'node-2', address: '198.18.0.2' },
        { name: 'node-1', address: '198.18.0.1' },
      ],
      pods: [
        {
          name: 'client',
          node: 'node-1',
          address: '198.18.1.2',
          namespace: 'shop',
          labels: { app: 'client' },
        },
        {
          name: 'waypoint-ab12-0',
          node: 'node-2',
          address: '198.18.2.5',
          namespace: 'shop',
          labels: WAYPOINT_LABELS,
        },
      ],
      controlAddress: '127.0.0.1:15014',
    });
    assert.deepEqual(got.ztunnel, [
      {
        targets: ['198.18.0.1:15020'],
        labels: { namespace: 'ambit-system', pod: 'ztunnel-node-1', node: 'node-1', app: 'ztunnel' },
      },
      {
        targets: ['198.18.0.2:15020'],
        labels: { namespace: 'ambit-system', pod: 'ztunnel-node-2', node: 'node-2', app: 'ztunnel' },
      },
    ]);
    assert.deepEqual(got.waypoint, [
      {
        targets: ['198.18.2.5:15020'],
        labels: {
          gateway_networking_k8s_io_gateway_name: 'waypoint',
          ambit_dev_waypoint_replica: '0',
          namespace: 'shop',
          pod: 'waypoint-ab12-0',
          node: 'node-2',
        },
      },
    ]);
    assert.deepEqual(got.control, [
      {
        targets: ['127.0.0.1:15014'],
        labels: { namespace: 'ambit-system', pod: 'ambit-control', app: 'istiod', istio: 'pilot' },
      },
    ]);
  });

  test('no control plane target without a TCP listener; an IPv6 listener is bracketed', () => {
    assert.deepEqual(scrapeTargets({ nodes: [], pods: [] }), {
      ztunnel: [],
      waypoint: [],
      sidecar: [],
      control: [],
    });
    assert.deepEqual(
      scrapeTargets({ nodes: [], pods: [], controlAddress: '::1:15014' }).control[0]?.targets,
      ['[::1]:15014'],
    );
  });

  test("a sidecar pod's proxy is scraped on the pod's own 15020, labelled as the pod", () => {
    const { sidecar, waypoint } = scrapeTargets({
      nodes: [],
      pods: [
        {
          name: 'web-1',
          node: 'node-2',
          address: '198.18.2.4',
          namespace: 'shop',
          labels: { app: 'web', 'sidecar.istio.io/inject': 'true' },
        },
        { name: 'plain', node: 'node-2', address: '198.18.2.5', namespace: 'shop', labels: { app: 'plain' } },
      ],
    });
    assert.deepEqual(sidecar, [
      {
        targets: ['198.18.2.4:15020'],
        labels: {
          app: 'web',
          sidecar_istio_io_inject: 'true',
          namespace: 'shop',
          pod: 'web-1',
          node: 'node-2',
        },
      },
    ]);
    assert.deepEqual(waypoint, []);
  });

  test('a pod label cannot override the target identity labels', () => {
    const [w] = scrapeTargets({
      nodes: [],
      pods: [
        {
          name: 'wp-0',
          node: 'node-1',
          address: '198.18.1.9',
          namespace: 'shop',
          labels: { ...WAYPOINT_LABELS, namespace: 'other', pod: 'fake' },
        },
      ],
    }).waypoint;
    assert.equal(w?.labels.namespace, 'shop');
    assert.equal(w?.labels.pod, 'wp-0');
  });

  for (const [name, want] of [
    ['app', 'app'],
    ['gateway.networking.k8s.io/gateway-name', 'gateway_networking_k8s_io_gateway_name'],
    ['istio.io/rev', 'istio_io_rev'],
  ] as const) {
    test(`promLabelName(${name}) is ${want}, as Kubernetes discovery writes it`, () => {
      assert.equal(promLabelName(name), want);
    });
  }
});

/** A lab state file as the lab writes it (version 1), with `nodes` nodes and these pods. */
function labState(
  nodes: number,
  pods: Array<{ name: string; node: string; address: string; labels: Record<string, string> }>,
) {
  return `${JSON.stringify({
    version: 1,
    name: 'sd',
    nodes,
    createdAt: new Date(0).toISOString(),
    nodeProcesses: {},
    pods: pods.map((p) => ({
      ...p,
      host: Number(p.address.split('.')[3]),
      namespace: 'shop',
      serviceAccount: 'waypoint',
      processes: [],
    })),
  })}\n`;
}

describe('PrometheusTargetFiles', () => {
  test('writes the target files and rewrites them when nodes and waypoint replicas change', async (t) => {
    const home = await mkdtemp(join(tmpdir(), 'ambit-sd-'));
    t.after(() => rm(home, { recursive: true, force: true }));
    const lab = new Lab({ home, name: 'sd' });
    await mkdir(join(home, 'labs', 'sd'), { recursive: true });
    await writeFile(lab.stateFile, labState(1, []));
    const dir = join(home, 'control', 'prometheus');
    const files = new PrometheusTargetFiles({ dir, lab, controlAddress: '127.0.0.1:15014', everyMs: 60_000 });
    t.after(() => files.stop());
    await files.start();
    const read = async (kind: keyof typeof PROMETHEUS_SD_FILES) =>
      JSON.parse(await readFile(join(dir, PROMETHEUS_SD_FILES[kind]), 'utf8')) as Array<{
        targets: string[];
      }>;
    assert.deepEqual(
      (await read('ztunnel')).map((g) => g.targets[0]),
      ['198.18.0.1:15020'],
    );
    assert.deepEqual(await read('waypoint'), []);
    assert.deepEqual(
      (await read('control')).map((g) => g.targets[0]),
      ['127.0.0.1:15014'],
    );
    assert.equal((await stat(dir)).mode & 0o777, 0o700, 'the directory is private, as the data directory');

    const controlBefore = (await stat(join(dir, PROMETHEUS_SD_FILES.control))).mtimeMs;
    await writeFile(
      lab.stateFile,
      labState(2, [
        { name: 'waypoint-ab12-0', node: 'node-1', address: '198.18.1.2', labels: WAYPOINT_LABELS },
        { name: 'waypoint-ab12-1', node: 'node-2', address: '198.18.2.2', labels: WAYPOINT_LABELS },
        { name: 'client', node: 'node-1', address: '198.18.1.3', labels: { app: 'client' } },
      ]),
    );
    await files.refresh();
    assert.deepEqual(
      (await read('ztunnel')).map((g) => g.targets[0]),
      ['198.18.0.1:15020', '198.18.0.2:15020'],
    );
    assert.deepEqual(
      (await read('waypoint')).map((g) => g.targets[0]),
      ['198.18.1.2:15020', '198.18.2.2:15020'],
    );
    assert.equal(
      (await stat(join(dir, PROMETHEUS_SD_FILES.control))).mtimeMs,
      controlBefore,
      'an unchanged file is not rewritten',
    );
  });

  test('a corrupt lab state keeps the last good files', async (t) => {
    const home = await mkdtemp(join(tmpdir(), 'ambit-sd-'));
    t.after(() => rm(home, { recursive: true, force: true }));
    const lab = new Lab({ home, name: 'sd' });
    await mkdir(join(home, 'labs', 'sd'), { recursive: true });
    await writeFile(lab.stateFile, labState(2, []));
    const dir = join(home, 'prometheus');
    const files = new PrometheusTargetFiles({ dir, lab, everyMs: 60_000 });
    t.after(() => files.stop());
    await files.start();
    await writeFile(lab.stateFile, '{"version": 1, "nodes": "two"');
    await files.refresh();
    const ztunnels = JSON.parse(await readFile(join(dir, PROMETHEUS_SD_FILES.ztunnel), 'utf8')) as unknown[];
    assert.equal(ztunnels.length, 2);
  });
});
