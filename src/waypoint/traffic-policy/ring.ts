// Envoy's ring hash: each endpoint is hashed onto a ring ceil(minimumRingSize / n) times (as
// `<address>_<i>`), a request's key picks the first entry at or after its hash, wrapping around. Removing
// an endpoint removes only its entries, so only the keys that landed on it move.

import { hash } from 'node:crypto';

/** A 48-bit hash (a safe integer), from MD5: spread matters here, not speed or secrecy. */
export function hashKey(value: string): number {
  return hash('md5', value, 'buffer').readUIntBE(0, 6);
}

/** Envoy's entries per endpoint for equal weights: enough for the ring to reach its minimum size. */
export function entriesPerItem(items: number, minimumRingSize: number): number {
  return items === 0 ? 0 : Math.ceil(minimumRingSize / items);
}

export class HashRing<T> {
  private readonly hashes: Float64Array;
  private readonly owners: Uint32Array;
  readonly items: readonly T[];

  /**
   * `items` with their stable names (the ring depends on the names, not on the order), each hashed
   * `perItem` times (Envoy: ceil(minimumRingSize / n) for equal weights; see `entriesPerItem`).
   */
  constructor(items: readonly T[], nameOf: (item: T) => string, perItem: number) {
    this.items = items;
    const entries: Array<[number, number]> = [];
    items.forEach((item, index) => {
      const name = nameOf(item);
      for (let i = 0; i < perItem; i++) entries.push([hashKey(`${name}_${i}`), index]);
    });
    entries.sort((a, b) => a[0] - b[0]);
    this.hashes = Float64Array.from(entries, (e) => e[0]);
    this.owners = Uint32Array.from(entries, (e) => e[1]);
  }

  get size(): number {
    return this.hashes.length;
  }

  /** The item owning the first ring entry at or after `h` (wrapping); undefined on an empty ring. */
  find(h: number): T | undefined {
    const n = this.hashes.length;
    if (n === 0) return undefined;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.hashes[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    return this.items[this.owners[lo === n ? 0 : lo] as number];
  }
}
