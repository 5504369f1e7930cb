// `ambit control`: runs the control plane in the foreground until SIGTERM or SIGINT.

import { join } from 'node:path';
import { Command } from 'commander';
import { startControlPlane } from '../control/index.ts';
import { ambitHome } from '../lab/index.ts';

export function controlCommand(): Command {
  const control = new Command('control')
    .description('run the control plane: store, admin API (15014), CA and config stream (15010)')
    .option('--data-dir <dir>', 'where the store, CA and socket live (default $AMBIT_HOME/control)')
    .option(
      '--admin-listen <host:port>',
      'admin API address (no authentication: keep it local)',
      '127.0.0.1:15014',
    )
    .option('--admin-socket <path>', 'admin API Unix socket (default <data-dir>/admin.sock; "" for none)')
    .action(async (opts: { dataDir?: string; adminListen: string; adminSocket?: string }) => {
      const dataDir = opts.dataDir ?? join(ambitHome(), 'control');
      const cp = await startControlPlane({
        dataDir,
        adminListen: opts.adminListen,
        adminSocket: opts.adminSocket,
      });
      console.log(
        `control plane ready: admin API on ${cp.adminAddress}${cp.adminSocket ? ` and unix:${cp.adminSocket}` : ''}`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await cp.close();
    });
  return control;
}
