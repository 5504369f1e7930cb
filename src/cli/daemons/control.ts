// Entry point of `ambit control` (the control plane) when it runs from the build.

import { controlCommand } from '../control.ts';
import { programOf, runProgram } from '../run.ts';

export function main(argv: string[]): Promise<void> {
  return runProgram(programOf([controlCommand()]), argv);
}
