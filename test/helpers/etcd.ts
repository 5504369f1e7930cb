// A real etcd member on loopback for tests (Debian's etcd-server, 3.4): its own ports and a temporary
// data directory, stopped and removed when the test ends. Without the binary, tests skip loudly (CI
// installs it, so there they always run).

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './ports.ts';

export const hasEtcd = spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
export const NO_ETCD =
  !hasEtcd && 'NO ETCD: install etcd-server (scripts/install-system-packages.sh) to run these tests';

export interface EtcdMember {
  url: string;
  dataDir: string;
  /** Stops the member (SIGKILL: as a crash) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
}

/** A one-member etcd on 127.0.0.1, ready to answer; gone after the test. */
export async function startEtcd(t: TestContext): Promise<EtcdMember> {
  const member = await launchEtcd();
  t.after(() => member.remove());
  return member;
}

/**
 * A one-member etcd on 127.0.0.1 with `args` added (the benchmark raises its transaction limits), ready
 * to answer; `remove()` stops it and deletes its data.
 */
export async function launchEtcd(args: string[] = []): Promise<EtcdMember & { remove(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ambit-etcd-'));
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  let child: ChildProcess | undefined;
  let output = '';
  const member: EtcdMember = {
    url,
    dataDir,
    async start() {
      output = '';
      child = spawn(
        'etcd',
        [
          '--name',
          'test',
          '--data-dir',
          dataDir,
          '--listen-client-urls',
          url,
          '--advertise-client-urls',
          url,
          '--listen-peer-urls',
          peerUrl,
          '--initial-advertise-peer-urls',
          peerUrl,
          '--initial-cluster',
          `test=${peerUrl}`,
          '--log-level',
          'error',
          ...args,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (c: Buffer) => {
        output += c.toString();
      });
      child.stderr?.on('data', (c: Buffer) => {
        output += c.toString();
      });
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`etcd exited: ${output}`);
        const ok = await fetch(`${url}/health`)
          .then((r) => r.ok)
          .catch(() => false);
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`etcd did not become healthy: ${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
  };
  const remove = async () => {
    await member.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  await member.start().catch(async (err) => {
    await remove();
    throw err;
  });
  return { ...member, remove };
}
