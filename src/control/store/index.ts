export { EmbeddedStore, type EmbeddedStoreOptions } from './embedded.ts';
export type { Change, Store, StoredObject, StoredResource, StoreListener } from './types.ts';
