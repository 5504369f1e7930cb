#!/usr/bin/env node
// The `ambit` command. Node 24 runs the TypeScript sources directly (type stripping); the compile
// cache keeps the stripped and compiled modules between runs, which makes the CLI start much faster.
import { enableCompileCache } from 'node:module';

enableCompileCache();
// One-shot commands are quiet (warnings and errors only); the daemons log at info.
const DAEMONS = new Set(['control', 'ztunnel', 'sample']);
if (!DAEMONS.has(process.argv[2] ?? '')) globalThis.AMBIT_DEFAULT_LOG_LEVEL = 'warn';
const { main } = await import('../src/cli/main.ts');

main(process.argv).catch((err) => {
  console.error(`ambit: ${err?.stack ?? err}`);
  process.exit(70);
});
