// Waypoint choice: `istio.io/use-waypoint` on the workload, then on a Service selecting it, then on
// its namespace; the most specific label wins and `none` opts out at that level.

import type { GatewayResource, WaypointFor } from '../../config/index.ts';
import { WAYPOINT_CLASSES } from '../../config/index.ts';
import type { WaypointBinding } from './types.ts';

export const USE_WAYPOINT = 'istio.io/use-waypoint';
export const USE_WAYPOINT_NAMESPACE = 'istio.io/use-waypoint-namespace';

export type WaypointLookup = (namespace: string, name: string) => GatewayResource | undefined;

export function waypointLookup(gateways: readonly GatewayResource[]): WaypointLookup {
  const byKey = new Map<string, GatewayResource>();
  for (const gw of gateways) {
    if (WAYPOINT_CLASSES.includes(gw.spec.gatewayClassName))
      byKey.set(`${gw.metadata.namespace ?? 'default'}/${gw.metadata.name}`, gw);
  }
  return (namespace, name) => byKey.get(`${namespace}/${name}`);
}

/** A level's verdict: undefined (no label: ask the next level), null (`none`: no waypoint), or a binding. */
export function fromLabels(
  labels: Record<string, string> | undefined,
  objectNamespace: string,
  from: WaypointBinding['from'],
  via: string,
  lookup: WaypointLookup,
): WaypointBinding | null | undefined {
  const name = labels?.[USE_WAYPOINT];
  if (name === undefined) return undefined;
  if (name === 'none') return null;
  const namespace = labels?.[USE_WAYPOINT_NAMESPACE] ?? objectNamespace;
  const gw = lookup(namespace, name);
  const waypointFor = (gw?.metadata.labels?.['istio.io/waypoint-for'] ?? 'service') as WaypointFor;
  return { name, namespace, from, via, declared: gw !== undefined, for: waypointFor };
}

/** The first level that has a say decides; `none` (null) ends the search with no waypoint. */
export function firstSay(
  ...levels: (() => WaypointBinding | null | undefined)[]
): WaypointBinding | undefined {
  for (const level of levels) {
    const verdict = level();
    if (verdict !== undefined) return verdict ?? undefined;
  }
  return undefined;
}
