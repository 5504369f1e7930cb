// The CLI end-to-end against a real `ambit control`: apply, get, delete, dry run, refusal with the
// field path, and durability across kill -9.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { AMBIT, ambit, startControl } from '../../helpers/control.ts';
import { eventually } from '../../helpers/lab.ts';

const fixture = (name: string) => resolve(import.meta.dirname, '../../fixtures', name);

describe('ambit apply / get / delete against ambit control', () => {
  test('apply, unchanged, get, dry run, refusal, restart after kill -9, delete', async (t) => {
    const cp = await startControl(t);
    const env = { AMBIT_SERVER: cp.server };

    const first = await ambit(['apply', '-f', fixture('shop.yaml')], env);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.stdout.trim().split('\n'), [
      'namespace/shop created',
      'service/web created',
      'workloadentry/web-1 created',
      'workloadentry/web-2 created',
    ]);
    const again = await ambit(['apply', '-f', fixture('shop.yaml')], env);
    assert.match(again.stdout, /service\/web unchanged/);

    const list = await ambit(['get', 'workloadentries', '-n', 'shop', '-o', 'json'], env);
    assert.equal(list.code, 0, list.stderr);
    const items = (JSON.parse(list.stdout) as { items: Array<{ metadata: { name: string } }> }).items;
    assert.deepEqual(
      items.map((i) => i.metadata.name),
      ['web-1', 'web-2'],
    );
    const selected = await ambit(['get', 'we', '-A', '-l', 'app=web', '-o', 'json'], env);
    assert.equal((JSON.parse(selected.stdout) as { items: unknown[] }).items.length, 2);

    // A dry run reports the change and makes none.
    const changed = (await import('node:fs'))
      .readFileSync(fixture('shop.yaml'), 'utf8')
      .replace('port: 80', 'port: 81');
    const dry = await ambit(['apply', '--dry-run', '-f', '-'], env, changed);
    assert.match(dry.stdout, /service\/web configured \(dry run\)/);
    const svc = JSON.parse((await ambit(['get', 'svc', 'web', '-n', 'shop', '-o', 'json'], env)).stdout);
    assert.equal(svc.spec.ports[0].port, 80);

    // A misspelled field is refused with its path, and nothing changes.
    const bad = await ambit(['apply', '-f', fixture('bad-policy.yaml')], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /spec\.rules\[0\]\.from\[0\]\.source\.principles/);
    assert.match(bad.stderr, /AMBIT_ERR_CONFIG_INVALID/);
    const aps = await ambit(['get', 'authorizationpolicies', '-A', '-o', 'json'], env);
    assert.deepEqual(JSON.parse(aps.stdout).items, []);

    // kill -9 and restart on the same data directory: the same resources come back.
    const before = (await ambit(['get', 'we', '-A', '-o', 'json'], env)).stdout;
    await cp.stop('SIGKILL');
    const cp2 = await startControl(t, cp.dataDir);
    const after = (await ambit(['get', 'we', '-A', '-o', 'json'], { AMBIT_SERVER: cp2.server })).stdout;
    assert.deepEqual(JSON.parse(after), JSON.parse(before));

    const del = await ambit(['delete', 'we', 'web-2', '-n', 'shop'], { AMBIT_SERVER: cp2.server });
    assert.equal(del.stdout.trim(), 'workloadentry/web-2 deleted');
    const gone = await ambit(['get', 'we', 'web-2', '-n', 'shop'], { AMBIT_SERVER: cp2.server });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /not found.*AMBIT_ERR_API_NOT_FOUND/);
  });

  test('a config file sets what the flags set, and a bad one is refused naming the key', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ambit-cfg-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const good = join(dir, 'control.yaml');
    await writeFile(
      good,
      `dataDir: ${join(dir, 'data')}\nadminListen: 127.0.0.1:0\ngrpcListen: 127.0.0.1:0\nvipRange: 198.19.7.0/24\n`,
    );
    const child = spawn(process.execPath, [AMBIT, 'control', '--config', good], {
      env: { ...process.env, AMBIT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => child.kill());
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => String(d).includes('ready') && resolve()),
    );
    const env = { AMBIT_SERVER: `unix:${join(dir, 'data', 'admin.sock')}` };
    await ambit(['apply', '-f', fixture('shop.yaml')], env);
    const svc = await eventually(async () => {
      const { items } = JSON.parse(
        (await ambit(['get', 'services', '-n', 'shop', '-o', 'json'], env)).stdout,
      );
      return items[0]?.vips[0] as string | undefined;
    });
    assert.match(svc, /^198\.19\.7\.\d+$/, 'the VIP comes from the vipRange in the file');

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'adminListen: nowhere\ngrpcListn: 127.0.0.1:0\n');
    const refused = await ambit(['control', '--config', bad]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /adminListen: must be host:port/);
    assert.match(refused.stderr, /grpcListn/);
  });

  test('bad usage and an unreachable server fail with a clear message', async () => {
    const unknown = await ambit(['get', 'widgets'], { AMBIT_SERVER: 'http://127.0.0.1:1' });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown kind "widgets"/);
    const down = await ambit(['get', 'svc'], { AMBIT_SERVER: 'http://127.0.0.1:1' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach the control plane at http:\/\/127\.0\.0\.1:1/);
    const badServer = await ambit(['get', 'svc', '--server', 'ftp://x']);
    assert.match(badServer.stderr, /AMBIT_ERR_CLI_BAD_SERVER/);
    const missing = await ambit(['apply', '-f', '/nonexistent.yaml'], { AMBIT_SERVER: 'http://127.0.0.1:1' });
    assert.match(missing.stderr, /cannot read \/nonexistent\.yaml/);
  });
});
