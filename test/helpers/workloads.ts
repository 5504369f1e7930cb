// A streamed workload for unit tests of the proxies' plans: a pod in namespace shop (or `o.namespace`) on
// node-1, enrolled, PERMISSIVE; `o` overrides any field.

export const TRUST_DOMAIN = 'cluster.local';

export function workloadFixture(name: string, address: string, o: Record<string, unknown> = {}) {
  const namespace = (o.namespace as string | undefined) ?? 'shop';
  return {
    uid: `uid/${name}`,
    kind: 'Pod',
    name,
    namespace,
    serviceAccount: name,
    trustDomain: TRUST_DOMAIN,
    identity: `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${name}`,
    node: 'node-1',
    addresses: [address],
    labels: {},
    ports: {},
    enrolled: true,
    isWaypoint: false,
    services: [],
    authorizationPolicies: [],
    peerAuthentication: { mode: 'PERMISSIVE', portModes: {} },
    ...o,
  };
}
