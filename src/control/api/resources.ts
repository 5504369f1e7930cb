// What operators do to configuration: apply (create or replace), get, list, delete. Every batch is
// validated whole before anything changes, then committed as one store transaction, so concurrent
// applies serialise and a refused or interrupted apply leaves the previous state.

import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  type ConfigIssue,
  countValues,
  invalidConfigError,
  KINDS,
  type KindInfo,
  kindByCliName,
  kindInfo,
  MAX_REPORTED_ISSUES,
  type Resource,
  resourceKey,
  resourceName,
  validateResource,
} from '../../config/index.ts';
import { AmbitError } from '../../errors/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { AddressBook, REGISTRY_DEFAULTS, type VipTable, type WorkloadAddresses } from '../registry/index.ts';
import {
  type Change,
  isInternalKey,
  type Store,
  type StoredObject,
  type StoredResource,
} from '../store/index.ts';
import { type LabelSelector, parseLabelSelector } from './selector.ts';

export type ApplyAction = 'created' | 'configured' | 'unchanged' | 'pruned';

export interface ApplyOptions {
  dryRun?: boolean;
  /** Runs inside the transaction for each resource against what is stored; throwing refuses the batch. */
  guard?: (incoming: Resource, existing: StoredObject | undefined) => void;
  /** In the same transaction, deletes every stored resource not in the batch for which this is true. */
  prune?: (existing: StoredObject) => boolean;
}
export type DeleteAction = 'deleted' | 'not found';

export interface ApplyResult {
  key: string;
  kind: string;
  name: string;
  action: ApplyAction;
}

export interface ListQuery {
  kind: string;
  /** Undefined: every namespace. */
  namespace?: string;
  labelSelector?: string;
}

export interface ResourceRef {
  kind: string;
  namespace?: string;
  name: string;
}

/** The parts of a resource a user writes; when these are equal an apply changes nothing. */
function userFields(obj: Resource | StoredObject): unknown {
  const { name, labels, annotations } = obj.metadata as {
    name: string;
    labels?: unknown;
    annotations?: unknown;
  };
  const ns = 'namespace' in obj.metadata ? obj.metadata.namespace : undefined;
  return {
    apiVersion: obj.apiVersion,
    ns,
    name,
    labels,
    annotations,
    spec: (obj as { spec?: unknown }).spec,
  };
}

/** Objects one apply may carry unless configured otherwise (an etcd transaction allows 128 ops). */
export const DEFAULT_MAX_OBJECTS_PER_APPLY = 1000;

/**
 * Values (objects, arrays, scalars) one apply may carry in all. Each resource holds at most MAX_VALUES,
 * but 100 resources just under that still cost seconds of validation; a thousand ordinary resources
 * hold about 30,000.
 */
export const DEFAULT_MAX_VALUES_PER_APPLY = 100_000;

export interface ResourceApiOptions {
  /** The most objects one apply may carry; more is refused before any is validated. */
  maxObjectsPerApply?: number;
  /** The most values (objects, arrays, scalars) one apply may carry in all; more is refused before validation. */
  maxValuesPerApply?: number;
  /** Where addresses in use come from besides the store (the registry's view); see `AddressSources`. */
  addresses?: AddressSources;
  /**
   * The status as it is now, for kinds whose status follows the running mesh (a waypoint Gateway is
   * Programmed once its replicas run; a route is Accepted once a waypoint serves its parent); undefined
   * keeps the status written at apply.
   */
  liveStatus?: (object: StoredObject) => StoredObject['status'] | undefined;
}

/** What an apply checks Service clusterIPs and workload addresses against, besides the store. */
export interface AddressSources {
  /** The VIP range (`ambit control`'s vipRange); default 198.19.0.0/16. */
  vipRange?: string;
  /** VIPs the registry allocated, by `namespace/name` (they are not in the store). */
  allocatedVips?: () => VipTable;
  /** Workloads the registry knows; those not in the store (pods from the pod API) hold their addresses. */
  workloads?: () => readonly WorkloadAddresses[];
  /** Infrastructure CIDRs (nodes, pod gateways, the control plane) no WorkloadEntry may claim. */
  reserved?: readonly string[];
}

export class ResourceApi {
  readonly store: Store;
  private readonly maxObjects: number;
  private readonly maxValues: number;
  private readonly addresses: AddressSources;
  private readonly liveStatus: ResourceApiOptions['liveStatus'];

  constructor(store: Store, opts: ResourceApiOptions = {}) {
    this.store = store;
    this.maxObjects = opts.maxObjectsPerApply ?? DEFAULT_MAX_OBJECTS_PER_APPLY;
    this.maxValues = opts.maxValuesPerApply ?? DEFAULT_MAX_VALUES_PER_APPLY;
    this.addresses = opts.addresses ?? {};
    this.liveStatus = opts.liveStatus;
  }

  private withLiveStatus(object: StoredObject): StoredObject {
    const status = this.liveStatus?.(object);
    return status === undefined ? object : { ...object, status };
  }

  /**
   * Validates every object, then creates or replaces them in one transaction. Any invalid object
   * refuses the whole batch (AMBIT_ERR_CONFIG_INVALID, every problem in `detail.errors`).
   */
  async apply(objects: readonly unknown[], opts: ApplyOptions = {}): Promise<ApplyResult[]> {
    // Refused before anything is validated, so a huge batch costs neither time nor memory.
    if (objects.length > this.maxObjects) {
      throw invalidConfigError([
        {
          kind: '',
          name: '',
          path: 'objects',
          message: `${objects.length} objects in one apply; at most ${this.maxObjects} are accepted, so split it into several applies`,
        },
      ]);
    }
    // Counted without recursing and no further than the budget, so this costs at most the budget.
    let left = this.maxValues;
    for (const [i, obj] of objects.entries()) {
      left -= countValues(obj, left + 1);
      if (left < 0) {
        throw invalidConfigError([
          {
            kind: '',
            name: '',
            path: `objects[${i}]`,
            message: `the apply holds more than ${this.maxValues} values by this object; split it into several applies`,
          },
        ]);
      }
    }
    const valid: Array<{ resource: Resource; conditions: StoredObject['status'] }> = [];
    const errors: ConfigIssue[] = [];
    let omitted = 0;
    const report = (issues: readonly ConfigIssue[]) => {
      const room = Math.max(0, MAX_REPORTED_ISSUES - errors.length);
      errors.push(...issues.slice(0, room));
      omitted += Math.max(0, issues.length - room);
    };
    const seen = new Set<string>();
    objects.forEach((obj, i) => {
      const result = validateResource(obj, objects.length > 1 ? `item ${i + 1}` : undefined);
      if (!result.ok) {
        report(result.errors);
        return;
      }
      const key = resourceKey(result.resource);
      if (seen.has(key)) {
        report([
          {
            kind: result.resource.kind,
            name: resourceName(result.resource),
            path: 'metadata.name',
            message: 'appears twice in the same apply',
          },
        ]);
      }
      seen.add(key);
      valid.push({ resource: result.resource, conditions: { conditions: result.conditions } });
    });
    if (errors.length + omitted > 0) throw invalidConfigError(errors, omitted);

    const plan = (store: Store) => {
      const results: ApplyResult[] = [];
      const changes: Change[] = [];
      const now = new Date().toISOString();
      const book = valid.some((v) => AddressBook.concerns(v.resource)) ? this.addressBook(store) : undefined;
      const taken: ConfigIssue[] = [];
      for (const { resource, conditions } of valid) {
        const key = resourceKey(resource);
        const existing = store.get(key);
        opts.guard?.(resource, existing?.object);
        const base = { key, kind: resource.kind, name: resourceName(resource) };
        // Addresses are checked here, in the transaction, against the store and the batch so far.
        // An object that keeps the addresses it already had is not checked again.
        if (book && AddressBook.concerns(resource)) {
          const same =
            existing !== undefined &&
            isDeepStrictEqual(
              AddressBook.addressesOf(existing.object as Resource),
              AddressBook.addressesOf(resource),
            );
          const issues = same ? [] : book.check(resource, base.name);
          taken.push(...issues);
          if (issues.length === 0) book.put(resource);
        }
        if (existing && isDeepStrictEqual(userFields(existing.object), userFields(resource))) {
          results.push({ ...base, action: 'unchanged' });
          continue;
        }
        const object = {
          ...resource,
          metadata: {
            ...resource.metadata,
            uid: existing?.object.metadata.uid ?? randomUUID(),
            resourceVersion: '',
            generation: (existing?.object.metadata.generation ?? 0) + 1,
            creationTimestamp: existing?.object.metadata.creationTimestamp ?? now,
          },
          status: conditions,
        } as StoredObject;
        changes.push({ op: 'put', resource: { key, rev: 0, object } });
        results.push({ ...base, action: existing ? 'configured' : 'created' });
      }
      if (taken.length > 0) throw invalidConfigError(taken);
      if (opts.prune) {
        const keep = new Set(valid.map((v) => resourceKey(v.resource)));
        for (const r of store.list()) {
          if (isInternalKey(r.key) || keep.has(r.key) || !opts.prune(r.object)) continue;
          changes.push({ op: 'delete', key: r.key, previous: r });
          results.push({
            key: r.key,
            kind: r.object.kind,
            name: r.key.split('/').slice(1).join('/'),
            action: 'pruned',
          });
        }
      }
      return { results, changes };
    };

    if (opts.dryRun) return plan(this.store).results;
    let results: ApplyResult[] = [];
    await this.store.commit((store) => {
      const p = plan(store);
      results = p.results;
      return p.changes;
    });
    return results;
  }

  /** Every address the store and the registry hold, for checking an apply inside its transaction. */
  private addressBook(store: Store): AddressBook {
    return new AddressBook(
      store
        .list()
        .filter((r) => !isInternalKey(r.key))
        .map((r) => r.object as Resource),
      this.addresses.allocatedVips?.() ?? {},
      this.addresses.vipRange ?? REGISTRY_DEFAULTS.vipRange,
      this.addresses.workloads?.() ?? [],
      this.addresses.reserved ?? [],
    );
  }

  /** Creates only: an existing resource is an error (the admin API's POST to a collection). */
  async create(object: unknown): Promise<StoredObject> {
    const result = validateResource(object);
    if (!result.ok) throw invalidConfigError(result.errors);
    const key = resourceKey(result.resource);
    // Checked inside the transaction: of two concurrent creates, exactly one wins.
    await this.apply([object], {
      guard: (incoming, existing) => {
        if (existing) {
          throw new AmbitError(
            CONTROL_ERRORS.API_ALREADY_EXISTS,
            `${incoming.kind} ${resourceName(incoming)} already exists`,
            {
              detail: { key },
            },
          );
        }
      },
    });
    return this.store.get(key)!.object;
  }

  async delete(
    refs: readonly ResourceRef[],
    opts: { dryRun?: boolean } = {},
  ): Promise<Array<ApplyResultLike>> {
    const keys = refs.map((ref) => refKey(ref));
    const results: ApplyResultLike[] = [];
    const build = (store: Store) => {
      const changes: Change[] = [];
      results.length = 0;
      keys.forEach((key, i) => {
        const previous = store.get(key);
        const ref = refs[i]!;
        const name = ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
        results.push({ key, kind: kindOf(ref.kind).kind, name, action: previous ? 'deleted' : 'not found' });
        if (previous && !changes.some((c) => c.op === 'delete' && c.key === key))
          changes.push({ op: 'delete', key, previous });
      });
      return changes;
    };
    if (opts.dryRun) build(this.store);
    else await this.store.commit(build);
    return results;
  }

  get(ref: ResourceRef): StoredObject {
    const found = this.store.get(refKey(ref));
    if (!found) {
      const info = kindOf(ref.kind);
      const where = info.namespaced ? ` in namespace ${ref.namespace ?? 'default'}` : '';
      throw new AmbitError(CONTROL_ERRORS.API_NOT_FOUND, `${info.kind} "${ref.name}" not found${where}`, {
        detail: { key: refKey(ref) },
      });
    }
    return this.withLiveStatus(found.object);
  }

  list(query: ListQuery): StoredObject[] {
    const info = kindOf(query.kind);
    const match: LabelSelector = parseLabelSelector(query.labelSelector ?? '');
    return this.store
      .list()
      .filter((r) => r.object.kind === info.kind)
      .filter((r) => !info.namespaced || query.namespace === undefined || namespaceOf(r) === query.namespace)
      .filter((r) => match(r.object.metadata.labels))
      .map((r) => this.withLiveStatus(r.object))
      .sort(byNamespaceAndName);
  }
}

export interface ApplyResultLike {
  key: string;
  kind: string;
  name: string;
  action: ApplyAction | DeleteAction;
}

/** The kind named by a Kind, a plural or a short name (`AuthorizationPolicy`, `authorizationpolicies`, `ap`). */
export function kindOf(name: string): KindInfo {
  const info = kindInfo(name) ?? kindByCliName(name);
  if (!info) {
    throw new AmbitError(
      CONTROL_ERRORS.API_UNKNOWN_KIND,
      `unknown kind "${name}"; known kinds: ${KINDS.map((k) => k.plural).join(', ')}`,
    );
  }
  return info;
}

export function refKey(ref: ResourceRef): string {
  const info = kindOf(ref.kind);
  return info.namespaced
    ? `${info.kind}/${ref.namespace ?? 'default'}/${ref.name}`
    : `${info.kind}/${ref.name}`;
}

function namespaceOf(r: StoredResource): string | undefined {
  return 'namespace' in r.object.metadata ? (r.object.metadata.namespace as string | undefined) : undefined;
}

function byNamespaceAndName(a: StoredObject, b: StoredObject): number {
  const na = 'namespace' in a.metadata ? String(a.metadata.namespace) : '';
  const nb = 'namespace' in b.metadata ? String(b.metadata.namespace) : '';
  return na === nb ? a.metadata.name.localeCompare(b.metadata.name) : na.localeCompare(nb);
}
