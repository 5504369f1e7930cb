// Runs a commander program and turns what it throws into an exit code: shared by the full CLI and by the
// daemons' own entry points (src/cli/daemons/), which load only the command they run.

import { Command, CommanderError } from 'commander';
import { AmbitError, describeError } from '../errors/index.ts';

/** Exit codes: 0 success, 1 a reported error, 2 bad usage, 70 a bug (an unexpected exception). */
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** The `ambit` program with these commands. */
export function programOf(commands: readonly Command[]): Command {
  const program = new Command('ambit')
    .description('Ambit: an ambient (sidecar-less) service mesh for Linux')
    .showHelpAfterError()
    // `ambit waypoint` runs a replica with its own flags and has subcommands with flags of the same
    // names (--name, --token): a command's options are read only before its subcommand.
    .enablePositionalOptions()
    .exitOverride();
  for (const command of commands) program.addCommand(command);
  applyToAll(program, (cmd) => cmd.exitOverride().showHelpAfterError());
  return program;
}

/** Commander does not copy settings to commands added with addCommand; walk the tree instead. */
function applyToAll(cmd: Command, fn: (cmd: Command) => void): void {
  fn(cmd);
  for (const sub of cmd.commands) applyToAll(sub, fn);
}

export async function runProgram(program: Command, argv: string[]): Promise<void> {
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
