// Entry point of `ambit waypoint` with no subcommand (one waypoint replica) when it runs from the build:
// the program holds only the replica's flags, so the process loads only what the waypoint runs.

import { Command } from 'commander';
import { programOf, runProgram } from '../run.ts';
import { waypointProcess } from '../waypoint-process.ts';

export function main(argv: string[]): Promise<void> {
  const waypoint = waypointProcess(new Command('waypoint')).description('run one waypoint replica');
  return runProgram(programOf([waypoint]), argv);
}
