// A document every control-plane replica shares through the store (join tokens, revoked nodes, admin
// tokens). Reads come from the store's mirror, synchronously; a change is decided inside a store commit,
// on the newest value, so two replicas can never both act on the same old one (the loser decides again).

import { readFileSync } from 'node:fs';
import { readInternal, type Store, writeInternal } from './store/index.ts';

export class SharedDocument<T> {
  private readonly store: Store;
  private readonly name: string;

  constructor(store: Store, name: string) {
    this.store = store;
    this.name = name;
  }

  /** The document as this replica's mirror holds it; undefined until one is written. */
  read(): T | undefined {
    return readInternal<T>(this.store, this.name);
  }

  /**
   * Commits what `next` makes of the current value; undefined from `next` writes nothing. `next` may run
   * again on a newer value (another replica committed first); throwing from it commits nothing.
   */
  async update(next: (current: T | undefined) => T | undefined): Promise<void> {
    await this.store.commit((store) => {
      const value = next(readInternal<T>(store, this.name));
      return value === undefined ? [] : [writeInternal(this.name, value)];
    });
  }

  /**
   * Takes over what an older control plane kept in `file`, once: only while the store holds no document.
   * `parse` turns the file's JSON into the document; `unreadable` is thrown when the file cannot be read.
   */
  async takeOver(
    file: string,
    parse: (json: unknown) => T,
    unreadable: (cause: unknown) => Error,
  ): Promise<void> {
    if (this.read() !== undefined) return;
    const json = readJsonIfPresent(file, unreadable);
    if (json === undefined) return;
    const value = parse(json);
    await this.update((current) => (current === undefined ? value : undefined));
  }

  /** Calls `listener` after each commit that changed the document, whichever replica made it. */
  onChange(listener: (value: T | undefined) => void): () => void {
    let last = this.read();
    return this.store.watch(() => {
      const value = this.read();
      if (value === last) return;
      last = value;
      listener(value);
    });
  }
}

/** `file` parsed as JSON; undefined when it does not exist; `unreadable(cause)` is thrown otherwise. */
function readJsonIfPresent(file: string, unreadable: (cause: unknown) => Error): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(err);
  }
}
