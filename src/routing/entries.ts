// A ServiceEntry's hosts as the route engine finds them: the registry holds one service per host, keyed
// `ServiceEntry/<namespace>/<host>` and named by the entry, so a route naming the entry (by its
// metadata.name, as Istio's parentRefs and backendRefs do) stands for each host the entry holds.

import type { EntryHostsLookup } from './shapes.ts';

/** The fields of a registry service (or its xDS form) that tie a ServiceEntry host to its entry. */
export interface EntryHostService {
  key: string;
  name: string;
  namespace: string;
  kind?: string | undefined;
}

/** An EntryHostsLookup over `services`, indexed once (call it once per configuration, not per lookup). */
export function entryHostsOf(services: Iterable<EntryHostService>): EntryHostsLookup {
  const byEntry = new Map<string, string[]>();
  for (const s of services) {
    if (s.kind !== 'ServiceEntry') continue;
    const entry = `${s.namespace}/${s.name}`;
    const hosts = byEntry.get(entry);
    if (hosts === undefined) byEntry.set(entry, [s.key]);
    else hosts.push(s.key);
  }
  return (namespace, name) => byEntry.get(`${namespace}/${name}`) ?? [];
}
