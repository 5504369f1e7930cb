// Entry point of `ambit ztunnel` (a node's agent and ztunnel) when it runs from the build: the program
// holds this one command, so the process loads only what the ztunnel runs.

import { programOf, runProgram } from '../run.ts';
import { ztunnelCommand } from '../ztunnel.ts';

export function main(argv: string[]): Promise<void> {
  return runProgram(programOf([ztunnelCommand()]), argv);
}
