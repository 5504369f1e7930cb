export { EmbeddedStore, type EmbeddedStoreOptions } from './embedded.ts';
// The etcd adapter (and its client library) loads only when a control plane is told to use etcd.
export type { EtcdStore, EtcdStoreOptions } from './etcd.ts';
export { internalKey, isInternalKey, listInternal, readInternal, writeInternal } from './internal.ts';
export type {
  Duty,
  ReplicaReport,
  ReplicaSelf,
  Replicas,
  ReportedProxy,
  StoreHealth,
} from './replicas.ts';
export { REPLICA_NAME, REPLICA_NAME_RULE } from './replicas.ts';
export {
  DEFAULT_ETCD_PREFIX,
  type StoreChoice,
  type StoreKind,
  type StoreSettings,
  storeChoice,
} from './settings.ts';

import type { EtcdStore, EtcdStoreOptions } from './etcd.ts';

/** Opens the etcd store (see etcd.ts), loading the adapter on first use. */
export async function openEtcdStore(opts: EtcdStoreOptions): Promise<EtcdStore> {
  const { EtcdStore } = await import('./etcd.ts');
  return EtcdStore.open(opts);
}
export type { Change, Store, StoredObject, StoredResource, StoreListener } from './types.ts';
