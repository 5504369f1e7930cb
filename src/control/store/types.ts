// The store contract: every adapter (embedded, Kubernetes, replicated) keeps resources by key with a
// global revision, commits batches atomically, and tells watchers about each commit in order.

import type { Condition, Resource } from '../../config/index.ts';
import type { ReplicaSelf, Replicas } from './replicas.ts';

/** A resource as stored: the validated object plus the fields the store and control plane own. */
export type StoredObject = Resource & {
  metadata: Resource['metadata'] & {
    uid: string;
    resourceVersion: string;
    generation: number;
    creationTimestamp: string;
  };
  /** Conditions written at apply; the control plane may add live fields when it is read (addresses, parents). */
  status?: { conditions?: Condition[]; [field: string]: unknown };
};

export interface StoredResource {
  /** `Kind/namespace/name` (or `Kind/name` for cluster-scoped kinds). */
  key: string;
  /** The revision of the commit that last wrote it. */
  rev: number;
  object: StoredObject;
}

export type Change =
  | { op: 'put'; resource: StoredResource }
  | { op: 'delete'; key: string; previous: StoredResource };

export type StoreListener = (rev: number, changes: readonly Change[]) => void;

export interface Store {
  readonly revision: number;
  list(): StoredResource[];
  get(key: string): StoredResource | undefined;
  /**
   * Runs `build` under the store's write lock (it sees every earlier commit), then applies the
   * changes it returns atomically and durably. Throwing from `build` commits nothing.
   */
  commit(build: (store: Store) => Change[]): Promise<{ rev: number; changes: Change[] }>;
  watch(listener: StoreListener): () => void;
  /** How the control plane's replicas on this store share duties and reports (one, for a local store). */
  replicas(self: ReplicaSelf): Replicas;
  close(): Promise<void>;
}

/** Records the commit's revision on the resource, where Kubernetes clients look for it too. */
export function stamp(resource: StoredResource, rev: number): StoredResource {
  const object = {
    ...resource.object,
    metadata: { ...resource.object.metadata, resourceVersion: String(rev) },
  };
  return { ...resource, rev, object };
}
