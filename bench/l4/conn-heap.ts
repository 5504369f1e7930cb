// Heap snapshots, counted: objects and their own (shallow) bytes by kind and constructor, and the
// difference between two snapshots per connection. Strings, numbers and code are grouped by kind (their
// names are their contents).

import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export type HeapCounts = Map<string, { count: number; bytes: number }>;

const BY_KIND = new Set([
  'string',
  'concatenated string',
  'sliced string',
  'number',
  'code',
  'symbol',
  'bigint',
]);

export function countHeap(file: string): HeapCounts {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const counts: HeapCounts = new Map();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt] ?? 0] ?? '?';
    const key = BY_KIND.has(type) ? `(${type})` : `${type}:${snap.strings[snap.nodes[i + nameAt] ?? 0]}`;
    const c = counts.get(key) ?? { count: 0, bytes: 0 };
    c.count += 1;
    c.bytes += snap.nodes[i + sizeAt] ?? 0;
    counts.set(key, c);
  }
  return counts;
}

export interface PerConnection {
  what: string;
  perConn: number;
  bytesPerConn: number;
}

/** What `after` holds beyond `before`, divided by `n` connections, largest bytes first. */
export function perConnection(before: HeapCounts, after: HeapCounts, n: number, top = 30): PerConnection[] {
  const rows: PerConnection[] = [];
  for (const [what, a] of after) {
    const b = before.get(what) ?? { count: 0, bytes: 0 };
    const perConn = (a.count - b.count) / n;
    const bytesPerConn = (a.bytes - b.bytes) / n;
    if (perConn >= 0.5 || bytesPerConn >= 16) rows.push({ what, perConn, bytesPerConn });
  }
  return rows.sort((x, y) => y.bytesPerConn - x.bytesPerConn).slice(0, top);
}
