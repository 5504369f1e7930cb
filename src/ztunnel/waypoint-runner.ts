// The node agent's kubelet part for waypoints: every waypoint replica the control plane placed on this
// node gets its `ambit waypoint` process, in the replica's own pod namespace (the lab's), and a process
// that died is started again. The pod itself (its namespace, address and identity) is the control
// plane's doing, through the pod API; the node only runs what was placed on it.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../errors/index.ts';
import { Lab } from '../lab/index.ts';
import type { Logger } from '../log/index.ts';
import type { WorkloadResource } from '../xds/index.ts';

export interface WaypointRunnerOptions {
  node: string;
  /** The lab's state file: the pods, and where to start processes in them. */
  labState: string;
  dataDir: string;
  control: string;
  trustDomain: string;
  trustBundlePem: string;
  log: Logger;
}

/** How often dead waypoint processes are looked for, besides on every change of the placed replicas. */
const CHECK_MS = 2_000;
const MAX_BACKOFF_MS = 300_000;

export class WaypointRunner {
  private readonly opts: WaypointRunnerOptions;
  private readonly lab: Lab;
  private wanted: WorkloadResource[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private bundleFile: string | undefined;
  private readonly backoff = new Map<string, { at: number; delayMs: number }>();

  constructor(opts: WaypointRunnerOptions) {
    this.opts = opts;
    this.lab = Lab.atStateFile(opts.labState);
    this.timer = setInterval(() => this.sync(), CHECK_MS);
    this.timer.unref();
  }

  /** The waypoint replicas placed on this node now. */
  update(workloads: Iterable<WorkloadResource>): void {
    this.wanted = [...workloads].filter((w) => w.isWaypoint && w.node === this.opts.node);
    this.sync();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private sync(): void {
    this.chain = this.chain
      .then(() => this.pass())
      .catch((err) => {
        this.opts.log.warn({ err: describeError(err) }, 'could not start waypoint processes; will retry');
      });
  }

  private async pass(): Promise<void> {
    if (this.wanted.length === 0) return;
    const status = await this.lab.status();
    for (const w of this.wanted) {
      // The replica's own pod: same name, namespace, service account and node as the control plane says.
      const pod = status?.pods.find(
        (p) =>
          p.name === w.name &&
          p.namespace === w.namespace &&
          p.serviceAccount === w.serviceAccount &&
          p.node === this.opts.node,
      );
      if (!pod) continue; // the pod API has not made it yet
      if (pod.processes.some((p) => p.running && p.command[1] === 'waypoint')) continue;
      const restart = pod.processes.some((p) => p.command[1] === 'waypoint');
      // A replica that keeps dying is started again with a growing wait (2 s … 5 min), as a kubelet does.
      const back = this.backoff.get(w.name);
      if (restart && back && Date.now() < back.at) continue;
      const delay = restart ? Math.min((back?.delayMs ?? CHECK_MS / 2) * 2, MAX_BACKOFF_MS) : CHECK_MS;
      this.backoff.set(w.name, { at: Date.now() + delay, delayMs: delay });
      await this.lab.run(w.name, [
        'ambit',
        'waypoint',
        '--node',
        this.opts.node,
        '--control',
        this.opts.control,
        '--ca-bundle',
        await this.bundle(),
        '--trust-domain',
        this.opts.trustDomain,
        '--data-dir',
        this.opts.dataDir,
        '--name',
        w.name,
        '--namespace',
        w.namespace,
        '--service-account',
        w.serviceAccount,
      ]);
      this.opts.log.info(
        { pod: w.name, restart },
        restart ? 'restarted a waypoint that had stopped' : 'started a waypoint',
      );
    }
  }

  private async bundle(): Promise<string> {
    if (!this.bundleFile) {
      const file = join(this.opts.dataDir, 'waypoint-ca-bundle.pem');
      await writeFile(file, this.opts.trustBundlePem, { mode: 0o600 });
      this.bundleFile = file;
    }
    return this.bundleFile;
  }
}
