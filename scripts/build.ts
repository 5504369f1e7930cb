// Builds the long-running processes (`ambit ztunnel`, `ambit sidecar`, `ambit waypoint`, `ambit control`) into bundled
// JavaScript in dist/daemons/, with esbuild. A daemon run from the bundle skips type stripping (whose
// WebAssembly stripper alone holds ~17 MB) and loads one file per process instead of hundreds of modules:
// the ztunnel starts ~40 MB smaller. bin/ambit.js runs a daemon from the build only while the build is
// newer than every source file it was built from, and from the sources otherwise, so an edit is never
// shadowed by a stale build.
// It also bundles the dashboard's page (src/dashboard/ui/, for browsers) into dist/dashboard/: index.html,
// app.js and app.css, for the dashboard's server to hand out as they are. That build is separate from the
// daemons' and stays out of their manifest: the page runs in a browser, never from the sources.
// Usage: node scripts/build.ts   (npm ci and npm test run it)

import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
/** Two levels below the root, like src/<folder>/, so that paths a module builds from import.meta.dirname
 * (the proto files beside it, ../../build/Release for the addon, ../../bin) hold in the bundle too. */
const OUT = join(ROOT, 'dist', 'daemons');
const DAEMON_ENTRIES: Record<string, string> = {
  ztunnel: 'src/cli/daemons/ztunnel.ts',
  waypoint: 'src/cli/daemons/waypoint.ts',
  control: 'src/cli/daemons/control.ts',
  sidecar: 'src/cli/daemons/sidecar.ts',
};
/** Entries that are not commands: a ztunnel's worker threads (src/ztunnel/threads.ts finds it beside the bundle). */
const THREAD_ENTRIES: Record<string, string> = {
  'ztunnel-worker': 'src/ztunnel/worker-thread.ts',
};

/**
 * CommonJS packages imported only with import(): by tracing's exporters, the global rate limits and
 * the etcd store (whose client also reads its proto files from beside itself).
 */
const LAZY_COMMONJS = [
  '@opentelemetry/exporter-trace-otlp-proto',
  '@opentelemetry/exporter-trace-otlp-grpc',
  '@redis/client',
  'etcd3',
  'cockatiel',
];

const builtAt = Date.now();
rmSync(OUT, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: { ...DAEMON_ENTRIES, ...THREAD_ENTRIES },
  outdir: OUT,
  bundle: true,
  // Shared code in one chunk, and what a process loads only on demand (the OpenTelemetry SDK, jose) in
  // chunks of their own, so that a process that never needs them never reads them.
  splitting: true,
  chunkNames: 'chunk-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  // CommonJS packages that a daemon imports only on demand stay out of the bundle and load as Node loads
  // them: a dynamic import() of bundled CommonJS across split chunks yields only its default export (the
  // named ones, say OTLPTraceExporter, come out undefined).
  external: LAZY_COMMONJS,
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies call require(); give the ES module output one.
  banner: {
    js: "import { createRequire as __ambitCreateRequire } from 'node:module'; const require = __ambitCreateRequire(import.meta.url);",
  },
});

mkdirSync(join(OUT, 'proto'), { recursive: true });
for (const file of readdirSync(join(ROOT, 'src/xds/proto'))) {
  copyFileSync(join(ROOT, 'src/xds/proto', file), join(OUT, 'proto', file));
}
const sources = Object.keys(result.metafile.inputs)
  .filter((path) => path.startsWith('src/'))
  .concat(readdirSync(join(ROOT, 'src/xds/proto')).map((f) => `src/xds/proto/${f}`))
  .sort();
writeFileSync(
  join(OUT, 'manifest.json'),
  `${JSON.stringify(
    {
      builtAt,
      entries: Object.fromEntries(Object.keys(DAEMON_ENTRIES).map((name) => [name, `${name}.js`])),
      sources,
    },
    null,
    2,
  )}\n`,
);
console.log(
  `built ${Object.keys(DAEMON_ENTRIES).join(', ')} into ${relative(ROOT, OUT)}/ (${sources.length} sources)`,
);

// The dashboard's page: one script and one stylesheet (the page's own and uPlot's, imported from the
// script) for any browser of the last few years, with no source map, so that the folder holds only what
// index.html loads.
const DASHBOARD_OUT = join(ROOT, 'dist', 'dashboard');
const DASHBOARD_SRC = 'src/dashboard/ui';
rmSync(DASHBOARD_OUT, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: { app: `${DASHBOARD_SRC}/main.ts` },
  outdir: DASHBOARD_OUT,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
});
copyFileSync(join(ROOT, DASHBOARD_SRC, 'index.html'), join(DASHBOARD_OUT, 'index.html'));
console.log(`built the dashboard into ${relative(ROOT, DASHBOARD_OUT)}/`);
