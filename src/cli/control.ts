// `ambit control`: runs the control plane in the foreground until SIGTERM or SIGINT.

import { join } from 'node:path';
import { Command } from 'commander';
import { loadControlConfig, startControlPlane } from '../control/index.ts';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import { AdminClient, resolveServer } from './client.ts';

interface ControlFlags {
  config?: string;
  dataDir?: string;
  adminListen: string;
  adminSocket?: string;
  grpcListen: string;
  trustDomain: string;
  labState?: string;
}

export function controlCommand(): Command {
  const control = new Command('control')
    .description('run the control plane: store, admin API (15014), CA and config stream (15010)')
    .option(
      '--config <file>',
      'YAML with these settings (dataDir, adminListen, adminSocket, grpcListen, trustDomain, rootNamespace, vipRange, labState); flags win',
    )
    .option('--data-dir <dir>', 'where the store, CA and socket live (default $AMBIT_HOME/control)')
    .option(
      '--admin-listen <host:port>',
      'admin API address (no authentication: keep it local)',
      '127.0.0.1:15014',
    )
    .option('--admin-socket <path>', 'admin API Unix socket (default <data-dir>/admin.sock; "" for none)')
    .option('--grpc-listen <host:port>', 'CA and config stream (TLS, authenticated)', '0.0.0.0:15010')
    .option('--trust-domain <domain>', 'SPIFFE trust domain', 'cluster.local')
    .option(
      '--lab-state <file>',
      "the lab's state file, read as the pod API: its pods are the workloads on each node",
    )
    .action(async (opts: ControlFlags, cmd: Command) => {
      const file = opts.config ? await loadControlConfig(opts.config) : {};
      // A flag typed on the command line wins over the file; the file wins over flag defaults.
      const pick = <K extends keyof ControlFlags & keyof typeof file>(key: K) =>
        cmd.getOptionValueSource(key) === 'cli' ? opts[key] : (file[key] ?? opts[key]);
      const cp = await startControlPlane({
        dataDir: pick('dataDir') ?? join(ambitHome(), 'control'),
        adminListen: pick('adminListen'),
        adminSocket: pick('adminSocket'),
        grpcListen: pick('grpcListen'),
        trustDomain: pick('trustDomain'),
        labState: pick('labState'),
        registry: { rootNamespace: file.rootNamespace, vipRange: file.vipRange },
      });
      const socket = cp.adminSocket ? ` and unix:${cp.adminSocket}` : '';
      console.log(`control plane ready: admin API on ${cp.adminAddress}${socket}, gRPC on ${cp.grpcAddress}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await cp.close();
    });
  const token = control.command('token').description('join tokens that let a node join the mesh');
  token
    .command('create')
    .description('issue a single-use join token for a node')
    .requiredOption('--node <name>', 'the node that will use it')
    .option('--ttl <seconds>', 'how long it stays valid', '3600')
    .option('--server <url>', 'control plane admin API; default $AMBIT_SERVER')
    .action(async (opts: { node: string; ttl: string; server?: string }) => {
      const ttlSeconds = Number(opts.ttl);
      if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
        throw new AmbitError(
          'AMBIT_ERR_CLI_USAGE',
          `--ttl must be a positive whole number of seconds, got "${opts.ttl}"`,
        );
      }
      const res = await new AdminClient(resolveServer(opts.server)).call<{ token: string }>(
        'POST',
        '/ambit/v1/tokens',
        {
          node: opts.node,
          ttlSeconds,
        },
      );
      console.log(res.token);
    });
  const nodeCmd = control.command('node').description('nodes of the mesh');
  nodeCmd
    .command('revoke')
    .description(
      "revoke a node's credential: its streams end, its certificate requests are refused, until it rejoins with a new token",
    )
    .requiredOption('--node <name>', 'the node')
    .option('--server <url>', 'control plane admin API; default $AMBIT_SERVER')
    .action(async (opts: { node: string; server?: string }) => {
      const res = await new AdminClient(resolveServer(opts.server)).call<{ streamsEnded: number }>(
        'POST',
        '/ambit/v1/revoke-node',
        {
          node: opts.node,
        },
      );
      console.log(`node ${opts.node} revoked (${res.streamsEnded} stream(s) ended)`);
    });
  return control;
}
