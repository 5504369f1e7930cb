#!/usr/bin/env node
// The `ambit` command. Node 24 runs the TypeScript sources directly (type stripping); the compile
// cache keeps the stripped and compiled modules between runs, which makes the CLI start much faster.
// The long-running processes (ztunnel, sidecar, waypoint replica, control plane) run with V8 and allocator
// settings of their own, and from the bundles that scripts/build.ts writes to dist/daemons/ (npm ci
// and npm test build them), which load only what the process runs, without the type stripper; but
// only while that build is newer than every source it was built from, so that an edit is never
// shadowed by a stale build.
import { readFileSync, statSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

enableCompileCache();
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DAEMONS = new Set(['control', 'ztunnel', 'waypoint', 'sidecar']);
const command = process.argv[2] ?? '';
// One-shot commands are quiet (warnings and errors only); the daemons log at info.
if (!DAEMONS.has(command) && command !== 'sample') globalThis.AMBIT_DEFAULT_LOG_LEVEL = 'warn';

/** Whether this command line runs a daemon: not a subcommand (`ambit waypoint apply`) nor help. */
function runsDaemon(argv) {
  const rest = argv.slice(3);
  if (!DAEMONS.has(command) || (rest[0] !== undefined && !rest[0].startsWith('-'))) return false;
  return !rest.includes('-h') && !rest.includes('--help');
}

/** The built entry point of the daemon, or undefined to run from the sources. */
function builtDaemon() {
  if (process.env.AMBIT_FROM_SOURCES === '1') return undefined;
  const dir = join(ROOT, 'dist', 'daemons');
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return undefined; // never built
  }
  for (const source of manifest.sources) {
    let mtime;
    try {
      mtime = statSync(join(ROOT, source)).mtimeMs;
    } catch {
      mtime = Number.POSITIVE_INFINITY; // gone since the build
    }
    if (mtime > manifest.builtAt) {
      console.error(
        `ambit: ${source} changed after the build in dist/; running from the sources (npm run build)`,
      );
      return undefined;
    }
  }
  return join(dir, manifest.entries[command]);
}

/**
 * The daemons' process settings (daemon-settings.json, which the benchmarks that run their data paths
 * in processes of their own read too). V8's young generation otherwise grows to 16 MB semi-spaces
 * whose pages stay resident: 2 MB for the ztunnel and the control plane, which allocate little per
 * request and hold their state in the old generation; 8 MB for a waypoint, whose HTTP work allocates
 * per request (measured on its HTTP core at ~4.5k requests/s: 240 MB RSS instead of 330 MB, ~5 % fewer
 * requests/s). And two C-allocator arenas, not eight per core: V8's and libuv's threads each keep freed
 * memory in their own.
 */
const daemon = runsDaemon(process.argv);
const settings = daemon
  ? JSON.parse(readFileSync(join(ROOT, 'bin', 'daemon-settings.json'), 'utf8'))
  : undefined;
const flags = settings?.v8Flags[command] ?? [];
if (!flags.every((f) => process.execArgv.includes(f))) {
  // V8 reads its heap settings at start only: start again with them, as the same process (same pid).
  // The environment's own values win over the settings' defaults.
  const args = [...flags, ...process.execArgv, ...process.argv.slice(1)];
  process.execve(process.execPath, [process.execPath, ...args], { ...settings.env, ...process.env });
}
const { main } = await import((daemon ? builtDaemon() : undefined) ?? '../src/cli/main.ts');

main(process.argv).catch((err) => {
  console.error(`ambit: ${err?.stack ?? err}`);
  process.exit(70);
});
