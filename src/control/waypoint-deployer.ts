// The waypoint deployment controller, as Istio's automated deployment: a Gateway of the waypoint class
// is all it takes. The control plane decides where each replica runs (the scheduler's job) and writes
// the replica's pod through the pod API (the lab's, here); the node agent of that node runs the
// waypoint process in it. A replica keeps its node while that node is ready; a deleted Gateway, or
// fewer replicas asked, takes the extra pods away.

import { createHash } from 'node:crypto';
import { type GatewayResource, waypointReplicas, waypointServiceAccount } from '../config/index.ts';
import { describeError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import { GATEWAY_NAME_LABEL, type LabPod } from './registry/index.ts';

const log = logger('waypoint-deployer');

export const REPLICA_LABEL = 'ambit.dev/waypoint-replica';

/** A pod the deployer wants: name, node, namespace, service account and labels. */
export interface WaypointPod {
  name: string;
  node: string;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
}

export interface PodApi {
  pods(): readonly LabPod[];
  add(pod: WaypointPod): Promise<void>;
  remove(name: string): Promise<void>;
}

/** At most this many waypoint replicas in one namespace, and in the whole mesh (a tenant cannot fill the nodes). */
export const MAX_WAYPOINT_PODS_PER_NAMESPACE = 10;
export const MAX_WAYPOINT_PODS = 50;

/**
 * The pod name of replica `i` of a Gateway: short (the lab allows 40 characters of `a-z0-9-`), stable,
 * and unique per namespace/name up to a 40-bit hash (a collision is refused, never overwritten).
 */
export function replicaPodName(namespace: string, name: string, i: number): string {
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 10);
  const base = name.replaceAll('.', '-').slice(0, 24).replace(/-+$/, '');
  return `${base}-${hash}-${i}`;
}

/** Rendezvous hashing: each replica ranks the nodes by hash, so a node set change moves few replicas. */
function rank(nodes: readonly string[], key: string): string[] {
  const score = (n: string) => createHash('sha256').update(`${key}|${n}`).digest().readUInt32BE(0);
  return [...nodes].sort((a, b) => score(b) - score(a) || (a < b ? -1 : 1));
}

const age = (gw: GatewayResource) =>
  `${gw.metadata.creationTimestamp ?? ''}|${gw.metadata.namespace ?? 'default'}/${gw.metadata.name}`;

/**
 * What to add and remove so that each waypoint Gateway has its replicas: a replica already placed on a
 * ready node stays; a missing one goes to the highest-ranked ready node holding the fewest replicas of
 * the same Gateway (several on one node only when there are more replicas than nodes). Older Gateways
 * are served first, within the per-namespace and mesh-wide caps. Pure.
 */
export function planWaypointPods(
  gateways: readonly GatewayResource[],
  readyNodes: readonly string[],
  existing: readonly LabPod[],
): { add: WaypointPod[]; remove: string[] } {
  const wanted = new Map<string, WaypointPod>();
  const existingByName = new Map(existing.map((p) => [p.name, p]));
  const perNamespace = new Map<string, number>();
  for (const gw of [...gateways].sort((a, b) => (age(a) < age(b) ? -1 : 1))) {
    const namespace = gw.metadata.namespace ?? 'default';
    const name = gw.metadata.name;
    const serviceAccount = waypointServiceAccount(gw);
    const replicas: Array<{ pod: string; i: number; node?: string }> = [];
    for (let i = 0; i < waypointReplicas(gw); i++) {
      const inNamespace = perNamespace.get(namespace) ?? 0;
      if (
        inNamespace >= MAX_WAYPOINT_PODS_PER_NAMESPACE ||
        wanted.size + replicas.length >= MAX_WAYPOINT_PODS
      )
        break;
      const pod = replicaPodName(namespace, name, i);
      if (wanted.has(pod)) break; // another Gateway's name hashes the same: the older keeps it
      perNamespace.set(namespace, inNamespace + 1);
      const have = existingByName.get(pod);
      const keep =
        have &&
        have.namespace === namespace &&
        have.serviceAccount === serviceAccount &&
        (readyNodes.includes(have.node) || readyNodes.length === 0);
      replicas.push({ pod, i, ...(keep ? { node: have.node } : {}) });
    }
    // Kept replicas count first, so a new one never doubles up beside them while a node is empty.
    const used = new Map<string, number>();
    for (const r of replicas) if (r.node) used.set(r.node, (used.get(r.node) ?? 0) + 1);
    for (const r of replicas) {
      if (!r.node) {
        const ranked = rank(readyNodes, `${namespace}/${name}/${r.i}`);
        const least = Math.min(...ranked.map((n) => used.get(n) ?? 0));
        r.node = ranked.find((n) => (used.get(n) ?? 0) === least);
        if (!r.node) continue; // no ready node: nothing to place it on yet
        used.set(r.node, (used.get(r.node) ?? 0) + 1);
      }
      wanted.set(r.pod, {
        name: r.pod,
        node: r.node,
        namespace,
        serviceAccount,
        labels: { [GATEWAY_NAME_LABEL]: name, [REPLICA_LABEL]: String(r.i) },
      });
    }
  }
  const add: WaypointPod[] = [];
  const remove: string[] = [];
  for (const p of existing) {
    if (p.labels[REPLICA_LABEL] === undefined) continue; // not ours
    const w = wanted.get(p.name);
    if (
      !w ||
      w.node !== p.node ||
      w.namespace !== p.namespace ||
      w.serviceAccount !== p.serviceAccount ||
      w.labels[GATEWAY_NAME_LABEL] !== p.labels[GATEWAY_NAME_LABEL]
    )
      remove.push(p.name);
  }
  for (const w of wanted.values()) {
    const have = existingByName.get(w.name);
    if (!have || remove.includes(w.name)) add.push(w);
  }
  return { add, remove };
}

/** Runs `planWaypointPods` against the pod API whenever asked, one pass at a time. */
export class WaypointDeployer {
  private readonly api: PodApi;
  private readonly gateways: () => readonly GatewayResource[];
  private readonly readyNodes: () => readonly string[];
  private readonly allowed: () => boolean;
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private busy = false;

  constructor(opts: {
    pods: PodApi;
    gateways: () => readonly GatewayResource[];
    readyNodes: () => readonly string[];
    /** Whether this deployer may act now (it holds the duty); checked before each step. */
    allowed?: () => boolean;
  }) {
    this.api = opts.pods;
    this.gateways = opts.gateways;
    this.readyNodes = opts.readyNodes;
    this.allowed = opts.allowed ?? (() => true);
  }

  /** Reconcile soon; calls during a pass make one more pass after it. */
  reconcile(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return this.running;
    }
    this.busy = true;
    this.running = this.pass().finally(() => {
      this.busy = false;
      if (this.again) {
        this.again = false;
        void this.reconcile();
      }
    });
    return this.running;
  }

  /** Settles when no pass runs (one under way ends first). */
  async idle(): Promise<void> {
    while (this.busy) await this.running;
  }

  private async pass(): Promise<void> {
    if (!this.allowed()) return;
    const { add, remove } = planWaypointPods(this.gateways(), this.readyNodes(), this.api.pods());
    for (const name of remove) {
      if (!this.allowed()) return;
      try {
        await this.api.remove(name);
        log.info({ pod: name }, 'removed a waypoint replica');
      } catch (err) {
        log.warn({ pod: name, err: describeError(err) }, 'could not remove a waypoint replica; will retry');
      }
    }
    for (const pod of add) {
      if (!this.allowed()) return;
      try {
        await this.api.add(pod);
        log.info({ pod: pod.name, node: pod.node, namespace: pod.namespace }, 'placed a waypoint replica');
      } catch (err) {
        log.warn(
          { pod: pod.name, err: describeError(err) },
          'could not place a waypoint replica; will retry',
        );
      }
    }
  }
}
