import { Command, CommanderError } from 'commander';
import { AmbitError, describeError } from '../errors/index.ts';
import { caCommand } from './ca.ts';
import { applyCommand, deleteCommand, getCommand } from './config.ts';
import { controlCommand } from './control.ts';
import { demoCommand } from './demo.ts';
import { labCommand } from './lab.ts';
import { derivedViews, describeCommand, proxyStatusCommand } from './mesh.ts';
import { prometheusCommand } from './prometheus.ts';
import { sampleCommand } from './sample.ts';
import { checkCommand, downCommand, upCommand } from './up.ts';
import { waypointCommand } from './waypoint.ts';
import { ztunnelCommand, ztunnelConfigCommand } from './ztunnel.ts';

/** Exit codes: 0 success, 1 a reported error, 2 bad usage, 70 a bug (an unexpected exception). */
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

export function buildProgram(): Command {
  const program = new Command('ambit')
    .description('Ambit: an ambient (sidecar-less) service mesh for Linux')
    .showHelpAfterError()
    // `ambit waypoint` runs a replica with its own flags and has subcommands with flags of the same
    // names (--name, --token): a command's options are read only before its subcommand.
    .enablePositionalOptions()
    .exitOverride();
  program.addCommand(upCommand());
  program.addCommand(downCommand());
  program.addCommand(demoCommand());
  program.addCommand(checkCommand());
  program.addCommand(labCommand());
  program.addCommand(sampleCommand());
  program.addCommand(controlCommand());
  program.addCommand(applyCommand());
  program.addCommand(getCommand(derivedViews));
  program.addCommand(describeCommand());
  program.addCommand(proxyStatusCommand());
  program.addCommand(ztunnelCommand());
  program.addCommand(ztunnelConfigCommand());
  program.addCommand(waypointCommand());
  program.addCommand(deleteCommand());
  program.addCommand(caCommand());
  program.addCommand(prometheusCommand());
  applyToAll(program, (cmd) => cmd.exitOverride().showHelpAfterError());
  return program;
}

/** Commander does not copy settings to commands added with addCommand; walk the tree instead. */
function applyToAll(cmd: Command, fn: (cmd: Command) => void): void {
  fn(cmd);
  for (const sub of cmd.commands) applyToAll(sub, fn);
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander has already printed its message for usage errors.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    if (err instanceof AmbitError) {
      console.error(`ambit: ${describeError(err)}`);
      process.exitCode = EXIT_ERROR;
      return;
    }
    throw err;
  }
}
