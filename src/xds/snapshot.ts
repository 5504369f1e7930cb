// A snapshot is everything the control plane wants proxies to hold, per resource type: name →
// (version, JSON body). Bodies are serialised and versioned once per snapshot, never per proxy.

import { createHash } from 'node:crypto';

/** The resource types on the config stream. */
export const TYPE = {
  workload: 'ambit.dev/Workload',
  service: 'ambit.dev/Service',
  authorization: 'ambit.dev/Authorization',
  trustBundle: 'ambit.dev/TrustBundle',
  httpRoute: 'ambit.dev/HTTPRoute',
  grpcRoute: 'ambit.dev/GRPCRoute',
  destinationRule: 'ambit.dev/DestinationRule',
  httpFault: 'ambit.dev/HTTPFault',
  /** AuthorizationPolicies with targetRefs, as applied: what waypoints enforce. */
  waypointAuthorization: 'ambit.dev/WaypointAuthorization',
  /**
   * AuthorizationPolicies without targetRefs (mesh-wide, namespace, selector), as applied: what a sidecar
   * enforces per request, with their HTTP attributes, on the ports it serves as HTTP.
   */
  sidecarAuthorization: 'ambit.dev/SidecarAuthorization',
  meshConfig: 'ambit.dev/MeshConfig',
  /** RequestAuthentications and RateLimitPolicies with targetRefs, as applied: what waypoints enforce. */
  requestAuthentication: 'ambit.dev/RequestAuthentication',
  rateLimitPolicy: 'ambit.dev/RateLimitPolicy',
  /** Telemetry resources, as applied: waypoints resolve tracing and access logging from them. */
  telemetry: 'ambit.dev/Telemetry',
  /** The mesh's own settings a waypoint needs: its root namespace and trust domain (one resource, `mesh`). */
  meshSettings: 'ambit.dev/MeshSettings',
} as const;

export type TypeUrl = (typeof TYPE)[keyof typeof TYPE] | (string & {});

export interface VersionedResource {
  version: string;
  body: Buffer;
}

export type TypeSnapshot = ReadonlyMap<string, VersionedResource>;

export interface Snapshot {
  /** The revision this snapshot was derived from. */
  version: string;
  types: ReadonlyMap<TypeUrl, TypeSnapshot>;
  /**
   * What changed since the snapshot before it, computed once per snapshot: a proxy that ACKed that
   * one gets exactly this, with no per-proxy walk over every resource.
   */
  previous?: { version: string; changes: ReadonlyMap<TypeUrl, { upserts: string[]; removed: string[] }> };
}

/** Serialises each resource and versions it by content, so an unchanged resource keeps its version. */
export function typeSnapshot(resources: Iterable<[name: string, value: unknown]>): TypeSnapshot {
  const out = new Map<string, VersionedResource>();
  for (const [name, value] of resources) {
    const body = Buffer.from(JSON.stringify(value));
    out.set(name, { version: createHash('sha256').update(body).digest('base64url').slice(0, 16), body });
  }
  return out;
}

export interface TypeDelta {
  upserts: Array<{ name: string; version: string; body: Buffer }>;
  removed: string[];
}

/** What must be sent to move a proxy holding `held` (name → version) to `desired`. */
export function diff(held: ReadonlyMap<string, string>, desired: TypeSnapshot | undefined): TypeDelta {
  const upserts: TypeDelta['upserts'] = [];
  const removed: string[] = [];
  for (const [name, r] of desired ?? []) {
    if (held.get(name) !== r.version) upserts.push({ name, version: r.version, body: r.body });
  }
  for (const name of held.keys()) if (!desired?.has(name)) removed.push(name);
  return { upserts, removed };
}

/** Per type, the names whose version changed (or appeared) and the names that went away. */
export function changesBetween(
  before: Snapshot,
  after: ReadonlyMap<TypeUrl, TypeSnapshot>,
): Map<TypeUrl, { upserts: string[]; removed: string[] }> {
  const out = new Map<TypeUrl, { upserts: string[]; removed: string[] }>();
  for (const type of new Set([...before.types.keys(), ...after.keys()])) {
    const held = new Map([...(before.types.get(type) ?? [])].map(([name, r]) => [name, r.version]));
    const d = diff(held, after.get(type));
    out.set(type, { upserts: d.upserts.map((u) => u.name), removed: d.removed });
  }
  return out;
}
