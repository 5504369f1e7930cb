// `ambit waypoint` as a process: one replica of a waypoint, on a node whose agent holds the node
// credential in `dataDir` (the node agent starts it there in the lab; on a host, run it beside the
// node's `ambit ztunnel` with the same data directory). It asks the CA for its own identity with that
// credential; the CA signs it only for a waypoint replica the control plane placed on this node.

import { join } from 'node:path';
import { type SpiffeId, workloadId } from '../identity/index.ts';
import { logger } from '../log/index.ts';
import {
  type NodeCredentialOptions,
  nodeCredentialCertificates,
  obtainNodeCredential,
} from '../proxy/index.ts';
import { CONTROL_CHANNEL_OPTIONS, controlPlaneCredentials } from '../xds/index.ts';
import { Waypoint, type WaypointPorts } from './waypoint.ts';

/** The credential options of the node this replica runs on (its credential is in `dataDir`), and the replica's. */
export interface WaypointProcessOptions extends Omit<NodeCredentialOptions, 'log'> {
  /** This replica's name (its pod). */
  name: string;
  namespace: string;
  serviceAccount: string;
  bindAddress?: string;
  ports?: Partial<WaypointPorts>;
}

/** Where a replica's admin socket is: in its node's data directory, by the replica's (pod's) name. */
export function waypointAdminSocket(nodeDataDir: string, replica: string): string {
  return join(nodeDataDir, 'waypoints', `${replica}.sock`);
}

export async function startWaypoint(o: WaypointProcessOptions): Promise<Waypoint> {
  const log = logger('waypoint').child({ waypoint: o.name });
  await obtainNodeCredential({ ...o, log });
  const identity: SpiffeId = workloadId(o.trustDomain, o.namespace, o.serviceAccount);
  const waypoint = new Waypoint({
    name: o.name,
    namespace: o.namespace,
    identity,
    trustBundlePem: o.trustBundlePem,
    bindAddress: o.bindAddress,
    ports: o.ports,
    adminSocket: waypointAdminSocket(o.dataDir, o.name),
    control: {
      target: o.control,
      credentials: (cert) => controlPlaneCredentials(o.trustDomain, o.trustBundlePem, cert),
      channelOptions: CONTROL_CHANNEL_OPTIONS,
    },
    certificates: nodeCredentialCertificates({ ...o, log }, 'waypoint'),
  });
  try {
    await waypoint.start();
  } catch (err) {
    await waypoint.stop().catch(() => {});
    throw err;
  }
  return waypoint;
}
