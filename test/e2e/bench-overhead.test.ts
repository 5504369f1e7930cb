// The overhead benchmark's harness (root): `node bench/run.ts overhead --quick` brings up a lab of its
// own, measures every mode at N = 1 and 10, and writes its JSON, Markdown and SVG charts — here into a
// temp directory (AMBIT_BENCH_RESULTS), so the repository's bench/results/ is left alone. It asserts
// only that every scenario and figure is there and numeric, and the charts exist: no timing.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { isRoot, skipUnlessRoot } from '../helpers/lab.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MODES = ['direct', 'ambient', 'waypoint', 'sidecar'];
const NS = [1, 10];
const FIGURES = [
  'rssMiB',
  'idleRssMiB',
  'cpuPer1k',
  'idleCores',
  'p50Ms',
  'p99Ms',
  'addedP50Ms',
  'addedP99Ms',
  'achievedRps',
  'errors',
  'enrollS',
  'hostBusy',
];
const CHARTS = [
  'overhead-rss.svg',
  'overhead-cpu.svg',
  'overhead-latency.svg',
  'overhead-latency-distribution.svg',
  'overhead-throughput.svg',
  'overhead-enroll.svg',
];

interface Figure {
  values: number[];
  median: number;
  min: number;
  max: number;
  vsDirect: number | null;
  vsAmbient: number | null;
}

/** `node bench/run.ts overhead --quick` with its output kept for the failure message. */
function runQuick(results: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['bench/run.ts', 'overhead', '--quick'], {
      cwd: ROOT,
      env: { ...process.env, AMBIT_BENCH_RESULTS: results, AMBIT_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('close', (code) => done({ code, output }));
  });
}

describe('npm run bench -- overhead --quick', {
  // Under 3 minutes on a quiet 2-core host; CI runs other lab tests beside it.
  timeout: 900_000,
  skip: !isRoot && 'NOT ROOT: the overhead benchmark needs a lab, so root (CI runs it as root)',
}, () => {
  test('every mode at N = 1 and 10 in the JSON, with numeric figures, and the charts drawn', {
    timeout: 900_000,
  }, async (t) => {
    if (skipUnlessRoot(t)) return;
    const results = await mkdtemp(join(tmpdir(), 'ambit-bench-overhead-test-'));
    t.after(() => rm(results, { recursive: true, force: true }));

    const run = await runQuick(results);
    assert.equal(run.code, 0, `the benchmark failed:\n${run.output.slice(-4000)}`);

    const report = JSON.parse(await readFile(join(results, 'latest.json'), 'utf8')) as {
      quick: boolean;
      settings: { ns: number[] };
      scenarios: Array<{ mode: string; n: number; figures: Record<string, Figure> }>;
      targets: Array<{ name: string; met: boolean }>;
    };
    assert.equal(report.quick, true);
    assert.deepEqual(report.settings.ns, NS);
    for (const mode of MODES) {
      for (const n of NS) {
        const s = report.scenarios.find((x) => x.mode === mode && x.n === n);
        assert.ok(s, `scenario ${mode} at N = ${n} is in the JSON`);
        for (const name of FIGURES) {
          const f: Figure | undefined = s.figures[name];
          assert.ok(f, `${mode} N=${n}: figure ${name} present`);
          for (const k of ['median', 'min', 'max'] as const) {
            assert.equal(typeof f[k], 'number', `${mode} N=${n} ${name}.${k} is a number`);
            assert.ok(Number.isFinite(f[k]), `${mode} N=${n} ${name}.${k} is finite: ${f[k]}`);
          }
          assert.ok(
            f.values.length >= 1 && f.values.every((v) => Number.isFinite(v)),
            `${mode} N=${n} ${name}.values`,
          );
          assert.ok('vsDirect' in f && 'vsAmbient' in f, `${mode} N=${n} ${name} has its ratios`);
        }
      }
    }
    assert.ok(report.targets.length >= 3, 'the targets are evaluated');
    for (const target of report.targets) assert.equal(typeof target.met, 'boolean', target.name);

    const md = await readFile(join(results, 'latest.md'), 'utf8');
    assert.match(md, /\*\*(MET|NOT MET)\*\*/);
    for (const chart of CHARTS) {
      const file = join(results, chart);
      assert.ok((await stat(file)).size > 0, `${chart} written`);
      assert.match(await readFile(file, 'utf8'), /^<svg[\s>]/, `${chart} is an SVG`);
    }
  });
});
