// Entry point of `ambit sidecar` when it runs from the build: the program holds only the sidecar's flags,
// so the process loads only what the sidecar runs.

import { programOf, runProgram } from '../run.ts';
import { sidecarCommand } from '../sidecar.ts';

export function main(argv: string[]): Promise<void> {
  return runProgram(programOf([sidecarCommand()]), argv);
}
