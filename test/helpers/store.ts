// A Namespace as a store holds it, for tests of the stores themselves (no API in front of them).

import type { StoredResource } from '../../src/control/store/index.ts';

export function storedNamespace(
  name: string,
  labels: Record<string, string> = {},
  annotations?: Record<string, string>,
): StoredResource {
  return {
    key: `Namespace/${name}`,
    rev: 0,
    object: {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name,
        labels,
        ...(annotations ? { annotations } : {}),
        uid: name,
        resourceVersion: '',
        generation: 1,
        creationTimestamp: '',
      },
    } as unknown as StoredResource['object'],
  };
}
