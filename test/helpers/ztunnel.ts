// In-process ztunnels (capture "none", clients through SOCKS5) joined to an in-process control plane,
// and what the tests around them share: ambient namespaces, WorkloadEntries, echo servers on workload
// addresses. Everything started here is stopped when the test ends.

import * as net from 'node:net';
import type { TestContext } from 'node:test';
import type { ControlPlane } from '../../src/control/index.ts';
import { CaClient, CONTROL_CHANNEL_OPTIONS, controlPlaneCredentials } from '../../src/xds/index.ts';
import { Ztunnel, type ZtunnelOptions } from '../../src/ztunnel/index.ts';
import { joinNode } from './mesh.ts';

/** What a test may set of a ztunnel's options; the node, capture, control and CA link are the helper's. */
export type InProcessOptions = Omit<ZtunnelOptions, 'node' | 'capture' | 'control' | 'certificates'>;

/**
 * A ztunnel for `node`, joined to `cp` with a fresh token, listening on `bindAddress` (also its only node
 * address unless `options` says otherwise) with every port chosen by the kernel; started, and stopped
 * when the test ends.
 */
export async function inProcessZtunnel(
  t: TestContext,
  cp: ControlPlane,
  node: string,
  bindAddress: string,
  options: Partial<InProcessOptions> = {},
): Promise<Ztunnel> {
  const cred = await joinNode(cp, node);
  const z = new Ztunnel({
    bindAddress,
    ports: { socks5: 0, metrics: 0, readiness: 0, admin: 0 },
    nodeAddresses: [bindAddress],
    drainMs: 200,
    ...options,
    node,
    capture: 'none',
    control: {
      target: cp.grpcAddress,
      credentials: () => controlPlaneCredentials(cp.ca.trustDomain, cred.trustBundlePem, cred),
      channelOptions: CONTROL_CHANNEL_OPTIONS,
    },
    certificates: new CaClient({
      address: cp.grpcAddress,
      trustDomain: cp.ca.trustDomain,
      trustBundlePem: cred.trustBundlePem,
      credential: cred,
    }),
  });
  t.after(() => z.stop());
  await z.start();
  return z;
}

/** A Namespace in the mesh (`istio.io/dataplane-mode: ambient`). */
export const ambientNamespace = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: { 'istio.io/dataplane-mode': 'ambient' } },
});

/** A WorkloadEntry `name` (service account and `app` label alike) at `address` on `node`. */
export const workloadEntry = (namespace: string, name: string, address: string, node: string) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace },
  spec: { address, serviceAccount: name, node, labels: { app: name } },
});

/** A TCP echo server on a workload address; returns the connections it has open right now. */
export async function workloadEcho(t: TestContext, address: string, port = 8080): Promise<Set<net.Socket>> {
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(port, address, r));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  );
  return open;
}
