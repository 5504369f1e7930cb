// The control plane's derived view of the mesh: it re-derives the registry after store commits
// (debounced, so a burst of applies costs a handful of derivations), keeps VIP allocations stable
// across restarts, and turns each derivation into the snapshot every proxy is streamed.
//
// VIP allocations are a document in the store (`~ambit/vips`), written in the same serialised commits
// as resources, so every replica on a shared store hands out the same addresses. A derivation that
// allocates publishes only once its table is committed; one whose table another replica changed first
// derives again from the new one, so no replica ever streams an address the store does not hold.
// Beside it the store keeps the range the table was allocated from (`~ambit/vip-range`): a replica
// with another range would move every other replica's addresses into its own, and they back, forever.

import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { isWaypointPolicy, kindInfo, type Resource } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import {
  changesBetween,
  type MeshSettingsResource,
  type Snapshot,
  TYPE,
  type TypeUrl,
  typeSnapshot,
} from '../xds/index.ts';
import { CONTROL_ERRORS } from './errors.ts';
import {
  deriveRegistry,
  type LabPod,
  parseVipRange,
  REGISTRY_DEFAULTS,
  type Registry,
  type RegistryOptions,
  type VipTable,
} from './registry/index.ts';
import {
  type Change,
  EmbeddedStore,
  internalKey,
  isInternalKey,
  readInternal,
  type Store,
  writeInternal,
} from './store/index.ts';

/** The store document holding the VIP allocations. */
const VIPS = 'vips';
/** The store document holding the range (CIDR) the VIP table was allocated from. */
const VIP_RANGE = 'vip-range';
const keyOf = (c: Change) => (c.op === 'put' ? c.resource.key : c.key);
const isVipChange = (c: Change) => keyOf(c) === internalKey(VIPS);

const log = logger('mesh');

export interface MeshStateOptions {
  /** Where an older control plane kept VIP allocations: read once, when the store holds none yet. */
  vipFile?: string;
  registry?: RegistryOptions;
  /** Quiet time after a commit before deriving (default 20 ms); bursts keep postponing it up to `maxDelayMs`. */
  debounceMs?: number;
  maxDelayMs?: number;
  /** Extra snapshot types the control plane adds (the trust bundle). */
  extraTypes?: () => Map<TypeUrl, Iterable<[string, unknown]>>;
  /** Pods from outside the store (the lab's pod API); call `schedule()` when they change. */
  pods?: () => readonly LabPod[];
  /**
   * Nodes whose credential was revoked: their workloads leave the mesh (no endpoints, no identities)
   * until the node rejoins. Call `schedule()` when the answer changes.
   */
  isNodeRevoked?: (node: string) => boolean;
}

/** Emits `derived` (registry, snapshot) after each derivation. */
export class MeshState extends EventEmitter {
  private readonly store: Store;
  private readonly opts: MeshStateOptions;
  /** The allocations of `vipFile`, until the store holds a table. */
  private legacyVips: VipTable = {};
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt: number | undefined;
  private stopWatching: (() => void) | undefined;
  private deriving: Promise<void> = Promise.resolve();
  private stopped = false;
  registry: Registry = { workloads: [], services: [], vips: {}, authorizations: [], issues: [] };
  snapshot: Snapshot = { version: '0', types: new Map() };
  /** How many derivations ran (for tests and metrics). */
  derivations = 0;

  constructor(store: Store, opts: MeshStateOptions) {
    super();
    this.store = store;
    this.opts = opts;
  }

  async start(): Promise<void> {
    await this.store.commit((store) => this.claimVipRange(store));
    if (this.opts.vipFile && readInternal(this.store, VIPS) === undefined)
      this.legacyVips = await readVips(this.opts.vipFile);
    await this.derive();
    // Commits of the control plane's own documents (tokens, revoked nodes) change nothing derived;
    // the VIP table does (another replica allocated), and revocations schedule one themselves.
    this.stopWatching = this.store.watch((_rev, changes) => {
      if (changes.some((c) => !isInternalKey(keyOf(c)) || isVipChange(c))) this.schedule();
    });
  }

  /** Stops deriving; resolves once a derivation in flight has finished (its commit included). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopWatching?.();
    clearTimeout(this.timer);
    await this.deriving;
  }

  /** Re-derive soon (something outside the store changed, e.g. the trust bundle). */
  schedule(): void {
    if (this.stopped) return;
    const now = Date.now();
    this.firstPendingAt ??= now;
    const debounce = this.opts.debounceMs ?? 20;
    const wait = Math.max(0, Math.min(debounce, this.firstPendingAt + (this.opts.maxDelayMs ?? 500) - now));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.firstPendingAt = undefined;
      // One derivation at a time, in order: a slow one must never publish after a newer one.
      this.deriving = this.deriving
        .then(() => this.derive())
        .catch((err) => log.error({ err }, 'registry derivation failed; keeping the previous one'));
    }, wait);
  }

  /**
   * Commits `next` as the VIP table if the store still holds `stored` (undefined: none yet); false
   * when another replica changed it first (nothing written).
   */
  private async commitVips(stored: VipTable | undefined, next: VipTable): Promise<boolean> {
    let won = true;
    await this.store.commit((store) => {
      const range = this.claimVipRange(store);
      won = isDeepStrictEqual(readInternal<VipTable>(store, VIPS), stored);
      return won ? [...range, writeInternal(VIPS, next)] : [];
    });
    return won;
  }

  /**
   * The change that records this replica's range as the one the VIP table is allocated from: nothing
   * when it already is; the range when none is recorded yet or no address is allocated yet. Any other
   * range is refused, as the table would then be rewritten back and forth by replicas that disagree.
   * An embedded store has a single control plane (its data-directory lock), which may change its range
   * on a restart: addresses outside the new one are allocated again.
   */
  private claimVipRange(store: Store): Change[] {
    const own = this.opts.registry?.vipRange ?? REGISTRY_DEFAULTS.vipRange;
    parseVipRange(own); // a range that is no CIDR is refused before it is recorded
    const recorded = readInternal<unknown>(store, VIP_RANGE);
    if (typeof recorded === 'string' && sameRange(recorded, own)) return [];
    const allocated = Object.keys(readInternal<VipTable>(store, VIPS) ?? {}).length > 0;
    if (typeof recorded === 'string' && allocated && !(this.store instanceof EmbeddedStore)) {
      throw new AmbitError(
        CONTROL_ERRORS.VIP_RANGE_MISMATCH,
        `this control plane's vipRange is ${own}, but the store's VIP table was allocated from ${recorded}: every control-plane replica on one store needs the same vipRange (set ${recorded} here), or each would move the others' addresses; to give the mesh another range, export it and import it into a new store whose control plane has the new vipRange`,
        { detail: { vipRange: own, storeVipRange: recorded } },
      );
    }
    if (recorded !== undefined) log.info({ from: recorded, to: own }, 'the VIP range changed');
    return [writeInternal(VIP_RANGE, own)];
  }

  private async derive(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const rev = this.store.revision;
      const resources = this.store
        .list()
        .map((r) => r.object as Resource)
        .filter((o) => kindInfo(o.kind) !== undefined);
      const stored = readInternal<VipTable>(this.store, VIPS);
      const base = stored ?? this.legacyVips;
      const registry = deriveRegistry({
        resources,
        pods: this.opts.pods?.(),
        revokedNodes: this.opts.isNodeRevoked,
        previousVips: base,
        options: this.opts.registry,
      });
      const unchanged = stored !== undefined && isDeepStrictEqual(registry.vips, stored);
      if (unchanged || (await this.commitVips(stored, registry.vips))) {
        this.publish(rev, resources, registry);
        return;
      }
      if (attempt >= 10) throw new Error('the VIP table kept changing under this derivation');
      log.debug({ attempt }, 'another replica allocated VIPs first; deriving again');
    }
  }

  private publish(rev: number, resources: Resource[], registry: Registry): void {
    this.registry = registry;
    this.derivations++;
    const types = new Map<TypeUrl, ReturnType<typeof typeSnapshot>>([
      [TYPE.workload, typeSnapshot(registry.workloads.map((w) => [w.uid, w]))],
      [TYPE.service, typeSnapshot(registry.services.map((s) => [s.key, s]))],
      [TYPE.authorization, typeSnapshot(registry.authorizations.map((a) => [`${a.namespace}/${a.name}`, a]))],
      [TYPE.httpRoute, typeSnapshot(streamedRoutes(resources, 'HTTPRoute'))],
      [TYPE.grpcRoute, typeSnapshot(streamedRoutes(resources, 'GRPCRoute'))],
      [TYPE.destinationRule, typeSnapshot(streamedRoutes(resources, 'DestinationRule'))],
      [TYPE.httpFault, typeSnapshot(streamedRoutes(resources, 'HTTPFault'))],
      [
        TYPE.waypointAuthorization,
        typeSnapshot(
          streamedAsApplied(
            resources.filter((r) => r.kind === 'AuthorizationPolicy' && isWaypointPolicy(r)),
            DRY_RUN,
          ),
        ),
      ],
      [
        TYPE.sidecarAuthorization,
        typeSnapshot(
          streamedAsApplied(
            resources.filter((r) => r.kind === 'AuthorizationPolicy' && !isWaypointPolicy(r)),
            DRY_RUN,
          ),
        ),
      ],
      [
        TYPE.requestAuthentication,
        typeSnapshot(
          streamedAsApplied(resources.filter((r) => r.kind === 'RequestAuthentication' && hasTargetRefs(r))),
        ),
      ],
      [
        TYPE.rateLimitPolicy,
        typeSnapshot(streamedAsApplied(resources.filter((r) => r.kind === 'RateLimitPolicy'))),
      ],
      [TYPE.telemetry, typeSnapshot(streamedAsApplied(resources.filter((r) => r.kind === 'Telemetry')))],
      [TYPE.meshConfig, typeSnapshot(streamedAsApplied(resources.filter((r) => r.kind === 'MeshConfig')))],
      [TYPE.meshSettings, typeSnapshot([['mesh', meshSettings(this.opts.registry)]])],
    ]);
    for (const [type, items] of this.opts.extraTypes?.() ?? []) types.set(type, typeSnapshot(items));
    const previous = this.snapshot;
    this.snapshot = {
      version: `${rev}.${this.derivations}`,
      types,
      previous: { version: previous.version, changes: changesBetween(previous, types) },
    };
    for (const issue of registry.issues) log.warn({ object: issue.object }, issue.message);
    this.emit('derived', registry, this.snapshot);
  }
}

/** The settings waypoints resolve policy by: the control plane's own, not a resource. */
function meshSettings(
  options: { rootNamespace?: string; trustDomain?: string } | undefined,
): MeshSettingsResource {
  return {
    rootNamespace: options?.rootNamespace ?? REGISTRY_DEFAULTS.rootNamespace,
    trustDomain: options?.trustDomain ?? REGISTRY_DEFAULTS.trustDomain,
  };
}

function hasTargetRefs(r: Resource): boolean {
  const spec = r.spec as { targetRef?: unknown; targetRefs?: unknown[] };
  return spec.targetRef !== undefined || (spec.targetRefs?.length ?? 0) > 0;
}

/** The annotation a waypoint reads on an AuthorizationPolicy: dry-run policies are reported, never enforced. */
const DRY_RUN = 'istio.io/dry-run';

/**
 * Resources go to waypoints as applied (they validate them again with the same schema), without status
 * and without annotations other than `keep`; keyed `namespace/name` (or `name` when cluster-scoped).
 */
function streamedAsApplied(resources: readonly Resource[], ...keep: string[]): Array<[string, unknown]> {
  return resources.map((r) => {
    const { annotations, ...metadata } = r.metadata as {
      namespace?: string;
      annotations?: Record<string, string>;
    };
    const kept = Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => keep.includes(k)));
    const key = kindInfo(r.kind)?.namespaced
      ? `${metadata.namespace ?? 'default'}/${r.metadata.name}`
      : r.metadata.name;
    return [
      key,
      {
        ...r,
        metadata: Object.keys(kept).length > 0 ? { ...metadata, annotations: kept } : metadata,
        status: undefined,
      },
    ];
  });
}

function streamedRoutes(
  resources: readonly Resource[],
  kind: 'HTTPRoute' | 'GRPCRoute' | 'DestinationRule' | 'HTTPFault',
): Array<[string, unknown]> {
  return streamedAsApplied(resources.filter((r) => r.kind === kind));
}

/** True when two CIDRs give the same usable addresses (198.19.0.0/16 and 198.19.4.0/16 do). */
function sameRange(a: string, b: string): boolean {
  try {
    const [x, y] = [parseVipRange(a), parseVipRange(b)];
    return x.first === y.first && x.last === y.last;
  } catch {
    return false;
  }
}

async function readVips(path: string): Promise<VipTable> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as VipTable;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    log.warn({ err, path }, 'the VIP table is unreadable; allocating afresh');
    return {};
  }
}
