// Lab end-to-end (root): real namespaces, real processes, real curl between pods, and nothing left
// behind afterwards — not even after a kill -9 half-way through.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { hasCode } from '../../src/errors/index.ts';
import { Lab } from '../../src/lab/index.ts';
import { isAlive, run } from '../../src/lab/system.ts';
import { eventually, isRoot, skipUnlessRoot, withLab } from '../helpers/lab.ts';

const AMBIT = resolve(import.meta.dirname, '../../bin/ambit.js');

async function curlJson(lab: Lab, from: string, url: string): Promise<Record<string, unknown>> {
  const r = await lab.exec(from, ['curl', '-sS', '--max-time', '5', url]);
  assert.equal(r.code, 0, `curl ${url} from ${from} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Waits until the server in `pod` answers on `url` (from the pod's node). */
async function waitReady(lab: Lab, node: string, url: string): Promise<void> {
  await eventually(
    async () => {
      const r = await lab.exec(node, ['curl', '-sS', '-o', '/dev/null', '--max-time', '1', url]);
      return r.code === 0 ? true : undefined;
    },
    15_000,
    `${url} to answer`,
  );
}

/** The exit code of a child, also when it has already exited (a late 'exit' listener would wait forever). */
function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

async function leftovers(prefix: string): Promise<{ netns: string[]; links: string[]; etc: string[] }> {
  const netns = (await run('ip', ['netns', 'list'])).split('\n').filter((l) => l.startsWith(prefix));
  const links = (await run('ip', ['-o', 'link'])).split('\n').filter((l) => l.includes(prefix));
  // Pods' resolv.conf files live on the host's disk under /etc/netns.
  const etc = (await readdir('/etc/netns').catch(() => [] as string[])).filter((n) => n.startsWith(prefix));
  return { netns, links, etc };
}

describe('lab end-to-end', {
  skip: !isRoot && 'NOT ROOT: lab end-to-end tests need root (CI runs them as root)',
}, () => {
  test('pods reach each other across nodes and on one node; the storefront answers', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab } = await withLab(t, 2);
    await lab.addPod({ name: 'echo', node: 'node-2', labels: { app: 'echo', version: 'v7' } });
    await lab.addPod({ name: 'peer', node: 'node-2' });
    await lab.addPod({ name: 'client', node: 'node-1' });
    await lab.addPod({ name: 'other', node: 'node-1', namespace: 'shop', serviceAccount: 'buyer' });
    const status = await lab.status();
    const addr = (name: string) => status?.pods.find((p) => p.name === name)?.address ?? '';
    assert.match(addr('echo'), /^198\.18\.2\.\d+$/);
    assert.match(addr('client'), /^198\.18\.1\.\d+$/);
    assert.deepEqual(
      status?.pods.find((p) => p.name === 'other'),
      { ...status?.pods.find((p) => p.name === 'other'), namespace: 'shop', serviceAccount: 'buyer' },
    );

    await lab.run('echo', ['ambit', 'sample', 'echo', '--port', '8080']);
    await waitReady(lab, 'node-2', `http://${addr('echo')}:8080/`);

    const cross = await curlJson(lab, 'client', `http://${addr('echo')}:8080/hello?x=1`);
    assert.equal(cross.pod, 'echo');
    assert.equal(cross.version, 'v7');
    const seen = cross.request as { path: string; peer: { address: string } };
    assert.equal(seen.peer.address, addr('client'), 'the echo server sees the client pod address, not NAT');

    // Each pod sees the cluster DNS and its own namespace's search path (`ip netns exec` mounts them).
    const resolv = await lab.exec('other', ['cat', '/etc/resolv.conf']);
    assert.match(resolv.stdout, /^search shop\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m);
    assert.match(resolv.stdout, /^nameserver 198\.18\.0\.254$/m);

    const same = await curlJson(lab, 'peer', `http://${addr('echo')}:8080/`);
    assert.equal((same.request as { peer: { address: string } }).peer.address, addr('peer'));

    // The storefront: frontend on node-1 calls catalog v1 (node-1) and v2 (node-2); catalog calls ratings.
    await lab.addPod({ name: 'ratings', node: 'node-2', labels: { app: 'ratings', version: 'v1' } });
    await lab.addPod({ name: 'catalog-v1', node: 'node-1', labels: { app: 'catalog', version: 'v1' } });
    await lab.addPod({ name: 'catalog-v2', node: 'node-2', labels: { app: 'catalog', version: 'v2' } });
    await lab.addPod({ name: 'frontend', node: 'node-1', labels: { app: 'frontend', version: 'v1' } });
    const s2 = await lab.status();
    const a = (name: string) => s2?.pods.find((p) => p.name === name)?.address ?? '';
    await lab.run('ratings', ['ambit', 'sample', 'storefront', 'ratings', '--port', '8080']);
    for (const v of ['catalog-v1', 'catalog-v2']) {
      await lab.run(v, [
        'ambit',
        'sample',
        'storefront',
        'catalog',
        '--port',
        '8080',
        '--ratings',
        `http://${a('ratings')}:8080`,
      ]);
    }
    const catalogs = `http://${a('catalog-v1')}:8080,http://${a('catalog-v2')}:8080`;
    await lab.run('frontend', [
      'ambit',
      'sample',
      'storefront',
      'frontend',
      '--port',
      '8080',
      '--catalog',
      catalogs,
    ]);
    for (const name of ['ratings', 'catalog-v1', 'catalog-v2']) {
      await waitReady(
        lab,
        s2?.pods.find((p) => p.name === name)?.node ?? '',
        `http://${a(name)}:8080/healthz`,
      );
    }
    await waitReady(lab, 'node-1', `http://${a('frontend')}:8080/healthz`);
    const pages = [
      JSON.stringify(await curlJson(lab, 'client', `http://${a('frontend')}:8080/api/products`)),
      JSON.stringify(await curlJson(lab, 'client', `http://${a('frontend')}:8080/api/products`)),
    ].join('\n');
    assert.match(pages, /catalog-v1/);
    assert.match(pages, /catalog-v2/);
    assert.match(pages, /ratings/);
  });

  test('bad input is refused and leaves nothing half-made', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab } = await withLab(t, 1);
    const before = await leftovers(lab.names.prefix);
    await assert.rejects(lab.addPod({ name: 'web', node: 'node-2' }), (e) =>
      hasCode(e, 'AMBIT_ERR_LAB_UNKNOWN_NODE'),
    );
    await assert.rejects(lab.addPod({ name: 'Web', node: 'node-1' }), (e) =>
      hasCode(e, 'AMBIT_ERR_LAB_INVALID_POD_NAME'),
    );
    await lab.addPod({ name: 'web', node: 'node-1' });
    await assert.rejects(lab.addPod({ name: 'web', node: 'node-1' }), (e) =>
      hasCode(e, 'AMBIT_ERR_LAB_DUPLICATE_POD'),
    );
    await assert.rejects(lab.exec('nope', ['true']), (e) => hasCode(e, 'AMBIT_ERR_LAB_UNKNOWN_POD'));
    await assert.rejects(lab.up(3), (e) => hasCode(e, 'AMBIT_ERR_LAB_ALREADY_UP'));
    const after = await leftovers(lab.names.prefix);
    assert.equal(after.netns.length, before.netns.length + 1, 'only the one good pod was added');
    await lab.removePod('web');
    assert.deepEqual((await leftovers(lab.names.prefix)).netns.sort(), before.netns.sort());

    // A pod namespace an `add` killed half-way left behind is cleared by the next add.
    await run('ip', ['netns', 'add', `${lab.names.prefix}pod-ghost`]);
    await lab.addPod({ name: 'web', node: 'node-1' });
    assert.equal(
      (await leftovers(lab.names.prefix)).netns.some((n) => n.includes('pod-ghost')),
      false,
    );

    // After a reboot the record remains but the namespaces are gone: `up` rebuilds instead of trusting it.
    for (const ns of (await leftovers(lab.names.prefix)).netns)
      await run('ip', ['netns', 'delete', ns.split(' ')[0]!]);
    await lab.up(1);
    assert.deepEqual((await lab.status())?.pods, []);
    assert.ok((await leftovers(lab.names.prefix)).netns.some((n) => n.startsWith(lab.names.node(1))));
  });

  test('not root, or a missing system tool: a clear error that says how to fix it, and nothing made', async (t) => {
    if (skipUnlessRoot(t)) return;
    const home = await mkdtemp(join(tmpdir(), 'ambit-test-'));
    t.after(() => rm(home, { recursive: true, force: true }));
    const env = { ...process.env, AMBIT_HOME: home, AMBIT_LAB: `p${process.pid}` };
    const run = (argv: string[], extra: NodeJS.ProcessEnv = {}) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(argv[0]!, argv.slice(1), {
          env: { ...env, ...extra },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        c.on('close', (code) => resolve({ code, stderr }));
      });

    const noIp = await run([process.execPath, AMBIT, 'lab', 'up'], { PATH: '/nonexistent' });
    assert.equal(noIp.code, 1);
    assert.match(
      noIp.stderr,
      /`ip` command is not available: install it with `apt-get install -y iproute2`.*AMBIT_ERR_LAB_MISSING_TOOL/,
    );

    // As an unprivileged user (when this checkout is readable by one).
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
    const readable = await run([
      ...nobody,
      process.execPath,
      '-e',
      `require('fs').accessSync(${JSON.stringify(AMBIT)})`,
    ]);
    if (readable.code === 0) {
      const notRoot = await run([...nobody, process.execPath, AMBIT, 'lab', 'up']);
      assert.equal(notRoot.code, 1);
      assert.match(notRoot.stderr, /needs root: run it as root.*AMBIT_ERR_LAB_NOT_ROOT/);
    } else {
      console.error(
        '*** the not-root half of this test was skipped: this checkout is not readable by user 65534 ***',
      );
    }
    assert.deepEqual((await leftovers(`ambit-p${process.pid}-`)).netns, []);
  });

  test('down removes namespaces, links and processes, even after kill -9 mid-way', async (t) => {
    if (skipUnlessRoot(t)) return;
    const home = await mkdtemp(join(tmpdir(), 'ambit-test-'));
    const name = `k${process.pid}`;
    const lab = new Lab({ home, name });
    t.after(async () => {
      await lab.down();
      await rm(home, { recursive: true, force: true });
    });

    // A lab with a running process, whose server is killed with -9.
    await lab.up(2);
    await lab.addPod({ name: 'sink', node: 'node-1' });
    const sink = await lab.run('sink', ['ambit', 'sample', 'tcp-echo', '--port', '9000']);
    const sleeper = await lab.run('node-2', ['sleep', '600']);
    await eventually(async () => ((await lab.status())?.pods[0]?.processes[0]?.running ? true : undefined));
    process.kill(sink.pid, 'SIGKILL');

    // `ambit lab pod add` killed with -9 while it works: the lab must still come down clean.
    const env = { ...process.env, AMBIT_HOME: home, AMBIT_LAB: name, AMBIT_LOG_LEVEL: 'silent' };
    const child = spawn(process.execPath, [AMBIT, 'lab', 'up', '--nodes', '2'], { env, stdio: 'ignore' });
    await exited(child);
    const adder = spawn(process.execPath, [AMBIT, 'lab', 'pod', 'add', 'half', '--node', 'node-2'], {
      env,
      stdio: 'ignore',
    });
    await eventually(async () =>
      (await leftovers(lab.names.prefix)).netns.some((n) => n.includes('pod-half')) ? true : undefined,
    );
    adder.kill('SIGKILL'); // it may have finished already; either way the lab must come down clean
    await exited(adder);

    const down = spawn(process.execPath, [AMBIT, 'lab', 'down'], { env, stdio: 'inherit' });
    assert.equal(await exited(down), 0);
    assert.deepEqual(await leftovers(lab.names.prefix), { netns: [], links: [], etc: [] });
    for (const pid of [sink.pid, sleeper.pid])
      assert.equal(isAlive(pid), false, `process ${pid} outlived the lab`);
  });
});
