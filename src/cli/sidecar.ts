// `ambit sidecar`: one workload's own proxy, in its pod (sidecar mode). The node agent starts it in each
// pod labelled for a sidecar (`sidecar.istio.io/inject: "true"`, or a namespace labelled
// `istio-injection: enabled`), as Istio's injection adds the container; it runs with group 1337, whose
// sockets its in-pod rules leave alone.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { SIDECAR_GID, SidecarCapture } from '../capture/index.ts';
import { PORTS } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import { startSidecar } from '../sidecar/index.ts';
import { controlTarget } from '../xds/index.ts';
import { parseMetricsAllow } from '../ztunnel/index.ts';
import { CLI_ERRORS } from './errors.ts';
import { serveUntilSignal } from './serve.ts';
import { dnsUpstreams } from './ztunnel.ts';

interface SidecarFlags {
  node: string;
  control: string;
  caBundle: string;
  trustDomain: string;
  dataDir?: string;
  uid: string;
  name: string;
  namespace: string;
  capture: boolean;
  dnsProxy: boolean;
  dnsUpstream?: string;
  metricsAllow?: string;
}

export function sidecarCommand(): Command {
  return new Command('sidecar')
    .description("run one workload's sidecar proxy, in its pod's network namespace (sidecar mode)")
    .requiredOption('--node <name>', 'the node the pod runs on (its credential vouches for the workload)')
    .requiredOption(
      '--control <host:port[,…]>',
      "the control plane's gRPC address (several replicas: comma-separated)",
    )
    .requiredOption('--ca-bundle <file>', 'PEM roots that vouch for the control plane')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option('--data-dir <dir>', "the node's data directory (default $AMBIT_HOME/nodes/<node>)")
    .requiredOption('--uid <uid>', "the workload's uid (`ambit get workloads -o json`)")
    .requiredOption('--name <pod>', 'its pod')
    .requiredOption('--namespace <ns>', "its pod's namespace")
    .option('--no-capture', "don't install the in-pod capture rules (they are already there)")
    .option(
      '--no-dns-proxy',
      "don't capture the pod's DNS (port 53) to the sidecar's DNS proxy on 15053 (on by default)",
    )
    .option(
      '--dns-upstream <addresses>',
      "where the DNS proxy forwards names that are not the mesh's: host[:port],… (default: the pod's /etc/resolv.conf)",
    )
    .option(
      '--metrics-allow <cidrs>',
      'comma-separated CIDRs that may scrape /metrics on 15020 besides the pod itself (e.g. where Prometheus runs)',
    )
    .action(async (flags: SidecarFlags) => {
      controlTarget(flags.control); // refuses a bad --control before anything starts
      const metricsAllow = parseMetricsAllow(
        (flags.metricsAllow ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      );
      // The pod's resolvers, read before anything else changes (the DNS proxy forwards other names there).
      const dns = flags.dnsProxy ? { upstreams: await dnsUpstreams(flags.dnsUpstream) } : undefined;
      const trustBundlePem = await readFile(flags.caBundle, 'utf8').catch((cause) => {
        throw new AmbitError(
          CLI_ERRORS.NO_FILE,
          `cannot read --ca-bundle ${flags.caBundle}: ${(cause as Error).message}`,
        );
      });
      // Every socket this process opens from here on belongs to group 1337, which the in-pod rules pass
      // by: its own connections (to the control plane, to peers' 15008, to the application) are never
      // sent back to itself. Files it reads stay root's (its user is unchanged).
      process.setegid?.(SIDECAR_GID);
      const sidecar = await startSidecar({
        node: flags.node,
        dataDir: flags.dataDir ?? join(ambitHome(), 'nodes', flags.node),
        control: flags.control,
        trustDomain: flags.trustDomain,
        trustBundlePem,
        workload: flags.uid,
        name: flags.name,
        namespace: flags.namespace,
        capture: flags.capture ? new SidecarCapture(dns ? { dnsPort: PORTS.dns } : {}) : undefined,
        dns,
        metricsAllow,
        // Out of sidecar mode: stop as on SIGTERM (its node does not start it again).
        onLeft: () => process.kill(process.pid, 'SIGTERM'),
      });
      await serveUntilSignal(`sidecar for ${flags.namespace}/${flags.name} ready`, () => sidecar.stop());
    });
}
