// `ambit sidecar` as a process: the ztunnel's data path for one workload, run inside that workload's own
// pod, with the sidecar's L7 (l7.ts) for the ports it serves as HTTP. Its in-pod rules (capture/sidecar.ts)
// send the pod's outgoing TCP to it and the pod's incoming plaintext to it; HBONE to the pod reaches it
// directly on 15008, since the node's ztunnel leaves a sidecar pod alone. It carries only its own
// workload's traffic, with that workload's identity, and reports Istio's metrics as a sidecar does
// (`reporter="source"` going out, `"destination"` coming in). It uses the credential of the node it runs
// on, as a waypoint does: the CA signs only the identity of a workload placed on that node.

import { join } from 'node:path';
import type { SidecarCapture } from '../capture/index.ts';
import { describeError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import {
  type NodeCredentialOptions,
  nodeCredentialCertificates,
  obtainNodeCredential,
  readNodeCredential,
} from '../proxy/index.ts';
import { CONTROL_CHANNEL_OPTIONS, controlPlaneCredentials } from '../xds/index.ts';
import { Ztunnel, type ZtunnelPorts } from '../ztunnel/index.ts';
import { SidecarL7 } from './l7.ts';

export interface SidecarProcessOptions extends Omit<NodeCredentialOptions, 'log'> {
  /** The workload's uid (the config stream's), whose traffic this sidecar carries. */
  workload: string;
  /** Its pod's name and namespace, for logs and the admin socket. */
  name: string;
  namespace: string;
  /** The in-pod rules, installed at start (undefined: the caller installed them, or tests). */
  capture?: SidecarCapture;
  ports?: Partial<ZtunnelPorts>;
  /** Who may scrape its 15020 besides the pod itself (see ZtunnelOptions.metricsAllow). */
  metricsAllow?: string[];
  /** Its DNS proxy (see ZtunnelOptions.dns), to which its rules send the pod's DNS. */
  dns?: { upstreams: ReadonlyArray<{ host: string; port: number }> };
  drainMs?: number;
  /**
   * Called once when the workload is no longer in sidecar mode (its label changed): the in-pod rules are
   * removed first, so the pod's traffic is its node's ztunnel's (or plain) again; the caller stops.
   */
  onLeft?: () => void;
}

/** Where a sidecar's admin socket is: in its node's data directory, by namespace and pod. */
export function sidecarAdminSocket(nodeDataDir: string, namespace: string, name: string): string {
  return join(nodeDataDir, 'sidecars', `${namespace}.${name}.sock`);
}

export async function startSidecar(o: SidecarProcessOptions): Promise<Ztunnel> {
  const log = logger('sidecar').child({ pod: `${o.namespace}/${o.name}` });
  let latest = await obtainNodeCredential({ ...o, log });
  const ca = nodeCredentialCertificates({ ...o, log }, 'sidecar');
  // The rules go in before the listeners: a pod is never left to send around its sidecar. They stay when
  // the sidecar stops (as Istio's do): the pod's traffic waits for its proxy rather than going in clear.
  await o.capture?.install();
  const ztunnel = new Ztunnel({
    node: o.node,
    workload: o.workload,
    sidecarName: `${o.name}.${o.namespace}`,
    l7: (parts) => new SidecarL7({ workload: o.workload, parts }),
    capture: 'redirect',
    // The pod's own addresses are its workload's, not a node's: nothing here is "the node itself".
    nodeAddresses: [],
    ports: o.ports,
    adminSocket: sidecarAdminSocket(o.dataDir, o.namespace, o.name),
    metricsAllow: o.metricsAllow,
    ...(o.dns ? { dns: { ...o.dns, host: '127.0.0.1' } } : {}),
    drainMs: o.drainMs,
    control: {
      target: o.control,
      // The credential last read (the node agent renews it in place; each certificate request re-reads it).
      credentials: () => controlPlaneCredentials(o.trustDomain, latest.trustBundlePem, latest),
      channelOptions: CONTROL_CHANNEL_OPTIONS,
    },
    certificates: {
      // Each certificate request reads the node credential afresh (the node agent renews it in place);
      // the config stream reconnects with the one last read.
      fetch: async (id, csr) => {
        latest = (await readNodeCredential(o.dataDir, o.node, log)) ?? latest;
        return ca.fetch(id, csr);
      },
    },
  });
  // A pod that leaves sidecar mode (its label changed) gets its networking back before the sidecar goes;
  // a pod that is removed takes its namespace, and the rules, with it.
  let left = false;
  ztunnel.state.onChange((s) => {
    const w = [...s.workloads.values()].find((x) => x.uid === o.workload);
    if (left || !w || (w.sidecar && w.enrolled)) return;
    left = true;
    log.warn(
      { enrolled: w.enrolled, sidecar: w.sidecar },
      'the workload left sidecar mode; removing the in-pod rules',
    );
    void (o.capture?.remove() ?? Promise.resolve()).then(
      () => o.onLeft?.(),
      (err) => {
        log.error({ err: describeError(err) }, 'could not remove the in-pod rules');
        o.onLeft?.();
      },
    );
  });
  try {
    await ztunnel.start();
  } catch (err) {
    await ztunnel.stop().catch(() => {});
    throw err;
  }
  return ztunnel;
}
