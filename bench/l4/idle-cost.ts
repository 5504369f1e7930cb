// Where an idle process's memory goes before it does anything: the resident set of a fresh Node process
// that only imports a module, from a bare process up to the ztunnel's entry point run from the sources
// and from the build, each in a child of its own, a few seconds after the import and full collections.
// RSS is split into anonymous (the process's own) and file-backed (the node binary and libraries, shared
// with every other Node process on the machine) from /proc/self/status.
//
// Usage: npx node bench/l4/idle-cost.ts   (run `npm run build` first for the bundled rows)

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import settings from '../../bin/daemon-settings.json' with { type: 'json' };

const ROOT = resolve(import.meta.dirname, '../..');
/** The flags and environment bin/ambit.js gives the ztunnel. */
const DAEMON_FLAGS = settings.v8Flags.ztunnel;
const DAEMON_ENV = settings.env;

interface Case {
  name: string;
  /** Module specifiers (or absolute paths) the child imports, in order; none for a bare process. */
  imports: string[];
  daemon?: boolean;
}

const tmp = mkdtempSync(join(tmpdir(), 'ambit-idle-cost-'));
const oneLineTs = join(tmp, 'one-line.ts');
writeFileSync(oneLineTs, 'export const x: number = 1;\n');
const bundle = join(ROOT, 'dist/daemons/ztunnel.js');

const CASES: Case[] = [
  { name: 'bare node', imports: [] },
  { name: 'node:net, node:tls, node:http2', imports: ['node:net', 'node:tls', 'node:http2'] },
  { name: 'node:http (ES module import)', imports: ['node:http'] },
  { name: 'a one-line .ts (type stripping)', imports: [oneLineTs] },
  { name: 'zod', imports: ['zod'] },
  { name: '@grpc/grpc-js', imports: ['@grpc/grpc-js'] },
  { name: 'prom-client', imports: ['prom-client'] },
  { name: 'the ztunnel entry, sources', imports: [join(ROOT, 'src/cli/daemons/ztunnel.ts')] },
  { name: 'the ztunnel entry, build', imports: [bundle] },
  { name: 'the ztunnel entry, build, daemon settings', imports: [bundle], daemon: true },
];

/** What the child runs: import, settle, collect, report. */
const CHILD = `
import { readFileSync } from 'node:fs';
for (const m of JSON.parse(process.argv[1])) await import(m);
await new Promise((r) => setTimeout(r, 2000));
globalThis.gc(); globalThis.gc();
const u = process.memoryUsage();
const st = readFileSync('/proc/self/status', 'utf8');
const kb = (k) => Number(new RegExp(k + ':\\\\s+(\\\\d+)').exec(st)[1]) * 1024;
console.log(JSON.stringify({ rss: u.rss, anon: kb('RssAnon'), file: kb('RssFile'), heapTotal: u.heapTotal, heapUsed: u.heapUsed, external: u.external }));
`;

const run = promisify(execFile);
const mib = (n: number) => (n / 2 ** 20).toFixed(1).padStart(6);

async function measure(c: Case): Promise<Record<string, number>> {
  const flags = ['--expose-gc', ...(c.daemon ? DAEMON_FLAGS : [])];
  const env = { ...process.env, ...(c.daemon ? DAEMON_ENV : {}), AMBIT_LOG_LEVEL: 'error' };
  const { stdout } = await run(
    process.execPath,
    [...flags, '--input-type=module', '-e', CHILD, JSON.stringify(c.imports)],
    { cwd: ROOT, env },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

try {
  console.log(`${'process'.padEnd(44)}    RSS   anon   file  heapT  heapU    ext  (MiB)`);
  for (const c of CASES) {
    if (c.imports.includes(bundle) && !existsSync(bundle)) {
      console.log(`${c.name.padEnd(44)} skipped: no build (npm run build)`);
      continue;
    }
    const m = await measure(c);
    console.log(
      `${c.name.padEnd(44)} ${mib(m.rss!)} ${mib(m.anon!)} ${mib(m.file!)} ${mib(m.heapTotal!)} ${mib(m.heapUsed!)} ${mib(m.external!)}`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
