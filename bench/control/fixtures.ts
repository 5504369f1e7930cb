// A synthetic mesh for the control-plane benchmark: namespaces, Services, WorkloadEntries and
// AuthorizationPolicies as plain manifests. Workload addresses are in 198.18.0.0/15 as data only.

export interface MeshShape {
  workloads: number;
  services: number;
  /** Namespaces the workloads and services are spread over (must divide `services`). */
  namespaces: number;
  /** AuthorizationPolicies with a workload selector, on top of one mesh-wide and one per namespace. */
  selectorPolicies: number;
}

export type Manifest = Record<string, unknown> & { kind: string };

export const ROOT_NAMESPACE = 'istio-system';

export const namespaceName = (i: number): string => `bench-${i}`;
export const serviceName = (i: number): string => `svc-${i}`;
export const workloadName = (i: number): string => `wl-${i}`;

/** Which namespace workload `i` (or service `i`) lives in: service i selects app-i in the same namespace. */
function namespaceOf(i: number, shape: MeshShape): string {
  return namespaceName((i % shape.services) % shape.namespaces);
}

/** 198.18.1.1 onwards, 250 hosts per /24, never .0 or .255: 10,000 workloads end in 198.18.40.x. */
export function workloadAddress(i: number): string {
  return `198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

export function namespaceManifest(name: string): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'istio.io/dataplane-mode': 'ambient' } },
  };
}

export function workloadManifest(i: number, shape: MeshShape, address = workloadAddress(i)): Manifest {
  const app = `app-${i % shape.services}`;
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: workloadName(i), namespace: namespaceOf(i, shape), labels: { app } },
    spec: {
      address,
      serviceAccount: `sa-${i % shape.services}`,
      node: `node-${i % 10}`,
      labels: { app, version: i % 2 === 0 ? 'v1' : 'v2' },
      ports: { http: 8080 },
    },
  };
}

function serviceManifest(i: number, shape: MeshShape): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(i), namespace: namespaceOf(i, shape) },
    spec: {
      selector: { app: `app-${i}` },
      ports: [
        { name: 'http', port: 80, targetPort: 'http' },
        { name: 'grpc', port: 9090, targetPort: 9090, appProtocol: 'grpc' },
      ],
    },
  };
}

function policies(shape: MeshShape): Manifest[] {
  const policy = (namespace: string, name: string, spec: Record<string, unknown>): Manifest => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace },
    spec,
  });
  const out: Manifest[] = [
    policy(ROOT_NAMESPACE, 'deny-blocked', {
      action: 'DENY',
      rules: [{ from: [{ source: { ipBlocks: ['198.18.250.0/24'] } }] }],
    }),
  ];
  for (let n = 0; n < shape.namespaces; n++) {
    out.push(
      policy(namespaceName(n), 'allow-mesh', {
        action: 'ALLOW',
        rules: [{ from: [{ source: { namespaces: [namespaceName(n), ROOT_NAMESPACE] } }] }],
      }),
    );
  }
  for (let p = 0; p < shape.selectorPolicies; p++) {
    const target = (p * 7) % shape.services;
    out.push(
      policy(namespaceOf(target, shape), `allow-${serviceName(target)}`, {
        selector: { matchLabels: { app: `app-${target}` } },
        action: 'ALLOW',
        rules: [
          {
            from: [{ source: { principals: [`cluster.local/ns/${namespaceOf(target + 1, shape)}/sa/*`] } }],
            to: [{ operation: { ports: ['8080'] } }],
          },
        ],
      }),
    );
  }
  return out;
}

/** Every manifest of the mesh: namespaces first, then services, workloads and policies. */
export function meshManifests(shape: MeshShape): Manifest[] {
  if (shape.services % shape.namespaces !== 0)
    throw new RangeError(`namespaces (${shape.namespaces}) must divide services (${shape.services})`);
  return [
    namespaceManifest(ROOT_NAMESPACE),
    ...Array.from({ length: shape.namespaces }, (_, n) => namespaceManifest(namespaceName(n))),
    ...Array.from({ length: shape.services }, (_, i) => serviceManifest(i, shape)),
    ...Array.from({ length: shape.workloads }, (_, i) => workloadManifest(i, shape)),
    ...policies(shape),
  ];
}
