// The node agent's kubelet part: the processes the mesh itself puts in pods on this node. Every waypoint
// replica the control plane placed here gets its `ambit waypoint` process, in the replica's own pod
// namespace (the lab's), and every pod in sidecar mode its `ambit sidecar`, as Istio's injection adds
// the proxy container; a process that died is started again, with a growing wait. The pods themselves
// (namespaces, addresses, identities) are the lab's and the control plane's doing; the node only runs
// what was placed on it.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SIDECAR_TABLE } from '../capture/index.ts';
import { describeError } from '../errors/index.ts';
import { Lab } from '../lab/index.ts';
import type { Logger } from '../log/index.ts';
import type { WorkloadResource } from '../xds/index.ts';

export interface PodProcessesOptions {
  node: string;
  /** The lab's state file: the pods, and where to start processes in them. */
  labState: string;
  dataDir: string;
  control: string;
  trustDomain: string;
  trustBundlePem: string;
  /** Who may scrape a sidecar's 15020 besides its pod (the node agent's own --metrics-allow). */
  metricsAllow?: string[];
  /** Called when a sidecar pod's in-pod rules are first seen in place: the node may let go of the pod. */
  onSidecarRules?: () => void;
  log: Logger;
}

/** How often dead processes are looked for, besides on every change of the workloads placed here. */
const CHECK_MS = 2_000;
const MAX_BACKOFF_MS = 300_000;

/** The `ambit` subcommand a workload's pod needs from the mesh, if any. */
function processFor(w: WorkloadResource): 'waypoint' | 'sidecar' | undefined {
  if (w.isWaypoint) return 'waypoint';
  if (w.sidecar && w.enrolled && w.kind === 'Pod') return 'sidecar';
  return undefined;
}

export class PodProcesses {
  private readonly opts: PodProcessesOptions;
  private readonly lab: Lab;
  private wanted: WorkloadResource[] = [];
  /** The node's Pods that are not in sidecar mode (some may have been, and kept their rules). */
  private others: WorkloadResource[] = [];
  /** Sidecar pods (uids) whose in-pod rules have been seen in place. */
  private readonly rulesIn = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private bundleFile: string | undefined;
  private readonly backoff = new Map<string, { at: number; delayMs: number }>();

  constructor(opts: PodProcessesOptions) {
    this.opts = opts;
    this.lab = Lab.atStateFile(opts.labState);
    this.timer = setInterval(() => this.sync(), CHECK_MS);
    this.timer.unref();
  }

  /** The waypoint replicas and sidecar pods placed on this node now. */
  update(workloads: Iterable<WorkloadResource>): void {
    const here = [...workloads].filter((w) => w.node === this.opts.node);
    this.wanted = here.filter((w) => processFor(w) !== undefined);
    this.others = here.filter((w) => processFor(w) === undefined && w.kind === 'Pod');
    for (const uid of this.rulesIn) if (!this.wanted.some((w) => w.uid === uid)) this.rulesIn.delete(uid);
    this.sync();
  }

  /**
   * Whether a sidecar pod's own rules are in place, so the node's capture may let it go: until then the
   * node keeps capturing it, and its ztunnel (which does not carry a sidecar pod) refuses its traffic,
   * so the pod is never in clear in between.
   */
  sidecarRulesIn(uid: string): boolean {
    return this.rulesIn.has(uid);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private sync(): void {
    this.chain = this.chain
      .then(() => this.pass())
      .catch((err) => {
        this.opts.log.warn({ err: describeError(err) }, 'could not start pod processes; will retry');
      });
  }

  private async pass(): Promise<void> {
    if (this.wanted.length === 0 && this.others.length === 0) return;
    const status = await this.lab.status();
    await this.releaseFormerSidecars(status);
    for (const w of this.wanted) {
      const what = processFor(w)!;
      // The workload's own pod: same name, namespace, service account and node as the control plane says.
      const pod = status?.pods.find(
        (p) =>
          p.name === w.name &&
          p.namespace === w.namespace &&
          p.serviceAccount === w.serviceAccount &&
          p.node === this.opts.node,
      );
      if (!pod) continue; // the pod API has not made it yet
      if (what === 'sidecar' && !this.rulesIn.has(w.uid) && (await this.hasSidecarRules(w.name))) {
        this.rulesIn.add(w.uid);
        this.opts.onSidecarRules?.();
      }
      if (pod.processes.some((p) => p.running && p.command[1] === what)) continue;
      const restart = pod.processes.some((p) => p.command[1] === what);
      // A process that keeps dying is started again with a growing wait (2 s … 5 min), as a kubelet does.
      const key = `${w.namespace}/${w.name}`;
      const back = this.backoff.get(key);
      if (restart && back && Date.now() < back.at) continue;
      const delay = restart ? Math.min((back?.delayMs ?? CHECK_MS / 2) * 2, MAX_BACKOFF_MS) : CHECK_MS;
      this.backoff.set(key, { at: Date.now() + delay, delayMs: delay });
      await this.lab.run(
        w.name,
        what === 'waypoint' ? await this.waypointArgv(w) : await this.sidecarArgv(w),
      );
      this.opts.log.info(
        { pod: w.name, restart },
        `${restart ? 'restarted' : 'started'} a ${what}${restart ? ' that had stopped' : ''}`,
      );
    }
  }

  /**
   * A pod that left sidecar mode while its sidecar was not running (dead, or backing off) still has the
   * sidecar's rules, which would send its traffic to nothing: they are removed here.
   */
  private async releaseFormerSidecars(status: Awaited<ReturnType<Lab['status']>>): Promise<void> {
    for (const w of this.others) {
      const pod = status?.pods.find((p) => p.name === w.name && p.namespace === w.namespace);
      if (!pod?.processes.some((p) => p.command[1] === 'sidecar')) continue; // never had one
      if (pod.processes.some((p) => p.running && p.command[1] === 'sidecar')) continue; // it removes them itself
      if (!(await this.hasSidecarRules(w.name))) continue;
      await this.lab.exec(w.name, ['nft', 'delete', 'table', 'ip', SIDECAR_TABLE]);
      this.opts.log.info(
        { pod: w.name },
        'removed the rules of a sidecar that had stopped; the pod left sidecar mode',
      );
    }
  }

  private async hasSidecarRules(pod: string): Promise<boolean> {
    return (await this.lab.exec(pod, ['nft', 'list', 'table', 'ip', SIDECAR_TABLE])).code === 0;
  }

  private async common(): Promise<string[]> {
    return [
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
    ];
  }

  private async waypointArgv(w: WorkloadResource): Promise<string[]> {
    return [
      'ambit',
      'waypoint',
      ...(await this.common()),
      '--name',
      w.name,
      '--namespace',
      w.namespace,
      '--service-account',
      w.serviceAccount,
    ];
  }

  private async sidecarArgv(w: WorkloadResource): Promise<string[]> {
    return [
      'ambit',
      'sidecar',
      ...(await this.common()),
      '--uid',
      w.uid,
      '--name',
      w.name,
      '--namespace',
      w.namespace,
      ...(this.opts.metricsAllow?.length ? ['--metrics-allow', this.opts.metricsAllow.join(',')] : []),
    ];
  }

  private async bundle(): Promise<string> {
    if (!this.bundleFile) {
      const file = join(this.opts.dataDir, 'pod-ca-bundle.pem');
      await writeFile(file, this.opts.trustBundlePem, { mode: 0o600 });
      this.bundleFile = file;
    }
    return this.bundleFile;
  }
}
