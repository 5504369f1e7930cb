#!/usr/bin/env node
// The `ambit` command. Node 24 runs the TypeScript sources directly (type stripping).
import { main } from '../src/cli/main.ts';

main(process.argv).catch((err) => {
  console.error(`ambit: ${err?.stack ?? err}`);
  process.exit(70);
});
