// What every store keeps in memory, whatever makes it durable: the resources by key, the revision, and
// the listeners told of each change set in order. Reads are synchronous because they read this.

import { logger } from '../../log/index.ts';
import { LocalReplicas, type ReplicaSelf, type Replicas } from './replicas.ts';
import type { Change, Store, StoredResource, StoreListener } from './types.ts';

const log = logger('store');

export class StoreMirror {
  private readonly items = new Map<string, StoredResource>();
  private readonly listeners = new Set<StoreListener>();
  private rev = 0;

  get revision(): number {
    return this.rev;
  }

  get size(): number {
    return this.items.size;
  }

  list(): StoredResource[] {
    return [...this.items.values()];
  }

  get(key: string): StoredResource | undefined {
    return this.items.get(key);
  }

  watch(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Applies one change set at `rev` and tells every listener (a listener's failure is logged, not thrown). */
  apply(rev: number, changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.op === 'put') this.items.set(c.resource.key, c.resource);
      else this.items.delete(c.key);
    }
    this.advance(rev);
    if (changes.length === 0) return;
    for (const listener of this.listeners) {
      try {
        listener(rev, changes);
      } catch (err) {
        log.error({ err }, 'store listener failed');
      }
    }
  }

  /** Moves the revision forward without a change (writes elsewhere in a shared store). */
  advance(rev: number): void {
    if (rev > this.rev) this.rev = rev;
  }

  close(): void {
    this.listeners.clear();
  }
}

/** A store whose reads are its mirror's: what the embedded and etcd stores share, not how they write. */
export abstract class MirroredStore implements Store {
  protected readonly mirror = new StoreMirror();

  get revision(): number {
    return this.mirror.revision;
  }

  list(): StoredResource[] {
    return this.mirror.list();
  }

  get(key: string): StoredResource | undefined {
    return this.mirror.get(key);
  }

  watch(listener: StoreListener): () => void {
    return this.mirror.watch(listener);
  }

  replicas(self: ReplicaSelf): Replicas {
    return new LocalReplicas(self);
  }

  abstract commit(build: (store: Store) => Change[]): Promise<{ rev: number; changes: Change[] }>;
  abstract close(): Promise<void>;
}
