// The control plane's own state kept beside the resources, in the same store: documents such as the
// VIP allocations, which every replica must agree on and which must change in the same serialised
// commits as resources do. They live under keys no resource can have (`~ambit/<name>`, a kind no
// user can apply), so the admin API, the registry and pruning never see them.

import type { Change, Store, StoredObject, StoredResource } from './types.ts';

const PREFIX = '~ambit/';
const KIND = 'AmbitInternal';

/** The store key of document `name`. */
export function internalKey(name: string): string {
  return PREFIX + name;
}

export function isInternalKey(key: string): boolean {
  return key.startsWith(PREFIX);
}

/** Every document, by name. */
export function listInternal(store: Pick<Store, 'list'>): Array<[string, unknown]> {
  return store
    .list()
    .filter((r) => isInternalKey(r.key))
    .map((r) => [r.key.slice(PREFIX.length), r.object.spec]);
}

/** The document `name` as the store holds it, or undefined when there is none yet. */
export function readInternal<T>(store: Pick<Store, 'get'>, name: string): T | undefined {
  return store.get(PREFIX + name)?.object.spec as T | undefined;
}

/** The change that writes `value` as document `name`. */
export function writeInternal(name: string, value: unknown): Change {
  const object = {
    apiVersion: 'ambit.dev/internal',
    kind: KIND,
    metadata: { name, uid: name, resourceVersion: '', generation: 1, creationTimestamp: '' },
    spec: value,
  } as unknown as StoredObject;
  const resource: StoredResource = { key: PREFIX + name, rev: 0, object };
  return { op: 'put', resource };
}
