// `ambit waypoint` with no subcommand: one waypoint replica, beside its node's agent (whose data
// directory holds the node credential). Kept apart from the management subcommands so that the replica's
// process loads only what it runs.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import { startWaypoint } from '../waypoint/index.ts';
import { controlTarget } from '../xds/index.ts';
import { CLI_ERRORS } from './errors.ts';
import { serveUntilSignal } from './serve.ts';

/** Adds the replica's flags and action to `cmd` (the `waypoint` command). */
export function waypointProcess(cmd: Command): Command {
  return cmd
    .option('--node <name>', 'run a waypoint replica: the node it runs on')
    .option(
      '--control <host:port[,…]>',
      "the control plane's gRPC address (several replicas: comma-separated)",
    )
    .option('--ca-bundle <file>', 'PEM roots that vouch for the control plane')
    .option('--token <token>', 'join token, if the node has not joined yet (or $AMBIT_JOIN_TOKEN)')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option('--data-dir <dir>', "the node's data directory (default $AMBIT_HOME/nodes/<node>)")
    .option('--name <pod>', "this replica's name (its pod)")
    .option('--namespace <ns>', "the waypoint's namespace")
    .option('--service-account <sa>', 'its service account (its identity)')
    .option('--bind <address>', 'where its listeners bind', '0.0.0.0')
    .action(async (flags: WaypointProcessFlags) => runWaypointProcess(flags));
}

interface WaypointProcessFlags {
  node?: string;
  control?: string;
  caBundle?: string;
  token?: string;
  trustDomain: string;
  dataDir?: string;
  name?: string;
  namespace?: string;
  serviceAccount?: string;
  bind: string;
}

/** `ambit waypoint --node … --control … --ca-bundle … --name … --namespace …`: one replica, until SIGTERM. */
async function runWaypointProcess(flags: WaypointProcessFlags): Promise<void> {
  const missing = (['node', 'control', 'caBundle', 'name', 'namespace', 'serviceAccount'] as const).filter(
    (f) => !flags[f],
  );
  if (missing.length > 0) {
    throw new AmbitError(
      CLI_ERRORS.USAGE,
      `to run a waypoint replica give ${missing.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}; to manage waypoints use a subcommand (apply, list, status, delete)`,
    );
  }
  controlTarget(flags.control!); // refuses a bad --control before anything starts
  const trustBundlePem = await readFile(flags.caBundle!, 'utf8').catch((cause) => {
    throw new AmbitError(
      CLI_ERRORS.NO_FILE,
      `cannot read --ca-bundle ${flags.caBundle}: ${(cause as Error).message}`,
    );
  });
  const waypoint = await startWaypoint({
    node: flags.node!,
    dataDir: flags.dataDir ?? join(ambitHome(), 'nodes', flags.node!),
    control: flags.control!,
    trustDomain: flags.trustDomain,
    trustBundlePem,
    token: flags.token ?? process.env.AMBIT_JOIN_TOKEN,
    name: flags.name!,
    namespace: flags.namespace!,
    serviceAccount: flags.serviceAccount!,
    bindAddress: flags.bind,
  });
  // No memory trim for a waypoint: measured in the L7 benchmark, whose rounds leave it quiet between its
  // runs, a trim before each run cost the run ~30 % more CPU (0.61–0.66 instead of 0.47 vCPU at 1,000
  // requests/s: pages faulted in again, code warmed up again) for 124 MB instead of 209 MB.
  await serveUntilSignal(`waypoint ${flags.namespace}/${flags.name} ready`, () => waypoint.stop(), {
    trimMemory: false,
  });
}
