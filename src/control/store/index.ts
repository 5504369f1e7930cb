export { EmbeddedStore, type EmbeddedStoreOptions } from './embedded.ts';
export { DEFAULT_ETCD_PREFIX, EtcdStore, type EtcdStoreOptions } from './etcd.ts';
export type { Change, Store, StoredObject, StoredResource, StoreListener } from './types.ts';
