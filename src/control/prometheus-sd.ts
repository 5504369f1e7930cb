// Prometheus file-based service discovery: the control plane keeps one target file per kind of
// scrape target (Prometheus's `file_sd` JSON) in `<data-dir>/prometheus/`, rewritten atomically when
// the lab's nodes or pods change, so a Prometheus started once follows waypoint replicas and nodes as
// they come and go, without a reload. The control plane writes them because it already places the
// waypoint replicas and reads the lab as its pod API; `ambit prometheus config` points at them.

import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PORTS, SIDECAR_INJECT } from '../config/index.ts';
import { describeError } from '../errors/index.ts';
import { SYSTEM_NAMESPACE } from '../identity/index.ts';
import type { LabStatus } from '../lab/index.ts';
import { logger } from '../log/index.ts';
import { GATEWAY_NAME_LABEL } from './registry/index.ts';

const log = logger('prometheus-sd');

/** One `file_sd` entry: addresses to scrape and the labels every series from them gets. */
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

export type TargetKind = 'ztunnel' | 'waypoint' | 'sidecar' | 'control';

/** The file each kind of target is listed in, inside the target directory. */
export const PROMETHEUS_SD_FILES: Readonly<Record<TargetKind, string>> = {
  ztunnel: 'ztunnels.json',
  waypoint: 'waypoints.json',
  sidecar: 'sidecars.json',
  control: 'control-plane.json',
};

/** What the targets are derived from: the lab's nodes and pods, and where the control plane serves /metrics. */
export interface TargetSource {
  nodes: ReadonlyArray<{ name: string; address: string }>;
  pods: ReadonlyArray<Pick<LabStatus['pods'][number], 'name' | 'node' | 'address' | 'namespace' | 'labels'>>;
  /** `host:port` of the control plane's TCP admin listener (which serves /metrics), if it has one. */
  controlAddress?: string;
}

/**
 * A Kubernetes label name as Prometheus's Kubernetes discovery writes it in a label name
 * (`__meta_kubernetes_pod_label_<name>`): every character outside `[a-zA-Z0-9_]` becomes `_`.
 */
export function promLabelName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/**
 * Every scrape target of the mesh, labelled as the `kubernetes-pods` relabelling of Istio's sample
 * Prometheus labels pods (`namespace`, `pod`, `node`, and each pod label) and as istiod is labelled
 * (`app="istiod"`), so dashboards and their selectors work unchanged. Pure; sorted, so that an
 * unchanged mesh renders the same bytes.
 */
export function scrapeTargets(source: TargetSource): Record<TargetKind, TargetGroup[]> {
  const byName = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
  const ztunnel = [...source.nodes].sort(byName).map((n) => ({
    targets: [`${n.address}:${PORTS.metrics}`],
    labels: { namespace: SYSTEM_NAMESPACE, pod: `ztunnel-${n.name}`, node: n.name, app: 'ztunnel' },
  }));
  const podTargets = (want: (p: TargetSource['pods'][number]) => boolean) =>
    source.pods
      .filter(want)
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))
      .map((p) => ({
        targets: [`${p.address}:${PORTS.metrics}`],
        labels: {
          ...Object.fromEntries(Object.entries(p.labels).map(([k, v]) => [promLabelName(k), v])),
          namespace: p.namespace,
          pod: p.name,
          node: p.node,
        },
      }));
  const waypoint = podTargets((p) => p.labels[GATEWAY_NAME_LABEL] !== undefined);
  // A pod labelled for a sidecar serves its proxy's metrics on its own 15020, as an Istio sidecar does.
  const sidecar = podTargets(
    (p) => p.labels[SIDECAR_INJECT] === 'true' && p.labels[GATEWAY_NAME_LABEL] === undefined,
  );
  const control = source.controlAddress
    ? [
        {
          targets: [hostPort(source.controlAddress)],
          labels: { namespace: SYSTEM_NAMESPACE, pod: 'ambit-control', app: 'istiod', istio: 'pilot' },
        },
      ]
    : [];
  return { ztunnel, waypoint, sidecar, control };
}

/** `host:port` as Prometheus wants it: an IPv6 host in brackets (a listener reports `::1:15014`). */
function hostPort(address: string): string {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  return host.includes(':') && !host.startsWith('[') ? `[${host}]${address.slice(at)}` : address;
}

export interface TargetFilesOptions {
  /** Where the target files go (made 0700 when missing). */
  dir: string;
  /** The lab, read as the pod API: its state file says which nodes and pods exist. */
  lab: { stateFile: string; status(): Promise<LabStatus | undefined> };
  controlAddress?: string;
  /** How often the lab's state file is looked at (default 1 s). */
  everyMs?: number;
}

/**
 * Keeps the target files current: looks at the lab's state file every `everyMs`, and when it changed
 * rewrites each target file whose content differs (temp file + rename: Prometheus watches the
 * directory and never reads half a file). A state it cannot read keeps the last files.
 */
export class PrometheusTargetFiles {
  private readonly opts: TargetFilesOptions;
  private readonly written = new Map<TargetKind, string>();
  private timer: NodeJS.Timeout | undefined;
  private seen = '';
  private running: Promise<void> | undefined;

  constructor(opts: TargetFilesOptions) {
    this.opts = opts;
  }

  /** Writes the files once, then keeps them current until `stop`. */
  async start(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.everyMs ?? 1_000);
    this.timer.unref();
  }

  /** Looks now; a call during a pass waits for that pass. */
  refresh(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async pass(): Promise<void> {
    try {
      const st = await stat(this.opts.lab.stateFile).catch(() => undefined);
      const stamp = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'absent';
      if (stamp === this.seen && this.written.size > 0) return;
      const status = await this.opts.lab.status();
      const groups = scrapeTargets({
        nodes: status?.nodes ?? [],
        pods: status?.pods ?? [],
        controlAddress: this.opts.controlAddress,
      });
      for (const kind of Object.keys(PROMETHEUS_SD_FILES) as TargetKind[])
        await this.write(kind, groups[kind]);
      this.seen = stamp;
    } catch (err) {
      log.warn(
        { err: describeError(err), dir: this.opts.dir },
        'cannot update the Prometheus target files; keeping the last ones',
      );
    }
  }

  private async write(kind: TargetKind, groups: TargetGroup[]): Promise<void> {
    const text = `${JSON.stringify(groups, null, 2)}\n`;
    const file = join(this.opts.dir, PROMETHEUS_SD_FILES[kind]);
    if (this.written.get(kind) === text) return;
    // After a restart the file on disk may already say this: leave its mtime alone.
    if ((await readFile(file, 'utf8').catch(() => undefined)) !== text) {
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, file);
      log.info({ file, targets: groups.length }, 'Prometheus targets changed');
    }
    this.written.set(kind, text);
  }
}
