// `ambit up --ha`'s pure parts: the flags (refused before anything is made), each etcd member's
// command line, and the HA shape read back from a lab that is up (what `ambit demo` keeps).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { etcdMemberArgs, haHosts, haOf } from '../../../src/cli/up.ts';
import { ambit } from '../../helpers/control.ts';

describe('ambit up --ha', () => {
  test('flags are checked before anything is made', async (t) => {
    const home = await mkdtemp(join(tmpdir(), 'ambit-upha-'));
    t.after(() => rm(home, { recursive: true, force: true }));
    const env = { AMBIT_HOME: home, AMBIT_LAB: 'uphaflags' };
    const without = await ambit(['up', '--etcd-members', '3'], env);
    assert.notEqual(without.code, 0);
    assert.match(without.stderr, /--etcd-members needs --ha/);
    for (const [flag, value, max] of [
      ['--etcd-members', '8', 7],
      ['--etcd-members', '0', 7],
      ['--control-replicas', '10', 9],
      ['--control-replicas', 'two', 9],
    ] as const) {
      const r = await ambit(['up', '--ha', flag, value], env);
      assert.notEqual(r.code, 0, `${flag} ${value}`);
      assert.match(r.stderr, new RegExp(`${flag} must be a whole number from 1 to ${max}`));
    }
  });

  test('hosts, and each member told the whole initial cluster on its own address', () => {
    assert.deepEqual(haHosts({ etcdMembers: 3, controlReplicas: 2 }), {
      etcd: ['etcd-1', 'etcd-2', 'etcd-3'],
      control: ['control-1', 'control-2'],
    });
    const args = etcdMemberArgs('etcd-2', ['etcd-1', 'etcd-2', 'etcd-3'], '/data/etcd-2', 'lab');
    const flag = (name: string) => args[args.indexOf(name) + 1];
    assert.equal(args[0], 'etcd');
    assert.equal(flag('--name'), 'etcd-2');
    assert.equal(flag('--listen-client-urls'), 'http://198.18.0.202:2379');
    assert.equal(flag('--listen-peer-urls'), 'http://198.18.0.202:2380');
    assert.equal(
      flag('--initial-cluster'),
      'etcd-1=http://198.18.0.201:2380,etcd-2=http://198.18.0.202:2380,etcd-3=http://198.18.0.203:2380',
    );
    assert.equal(flag('--initial-cluster-token'), 'ambit-lab');
  });

  test("a lab's HA shape is read back from its hosts", () => {
    assert.equal(haOf(undefined), undefined);
    assert.equal(haOf({ hosts: [] }), undefined);
    assert.deepEqual(
      haOf({ hosts: ['etcd-1', 'etcd-2', 'etcd-3', 'control-1', 'control-2'].map((name) => ({ name })) }),
      { etcdMembers: 3, controlReplicas: 2 },
    );
  });
});
