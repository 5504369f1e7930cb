// `npm run bench [-- NAME… --FLAG…]`: runs the benchmark modules (all, or those named) one after another
// and prints a table for each. Arguments starting with `--` are not module names: they go to every
// module run (`--quick`: a shorter run, for the modules that have one). Benchmarks never assert; they
// report figures and ratios to baselines.

import { type Bench, type BenchOptions, formatTable } from './harness.ts';

const MODULES: Record<string, { title: string; load: () => Promise<{ bench: Bench }> }> = {
  identity: {
    title: 'Identity: CA signing (baseline: raw ECDSA P-256 signatures)',
    load: () => import('./identity.ts'),
  },
  control: {
    title: 'Control plane: registry derivation and config push',
    load: () => import('./control.ts'),
  },
  l4: {
    title: 'L4 mesh: direct vs two ztunnels vs an HAProxy mTLS pair (lab, root)',
    load: () => import('./l4.ts'),
  },
  l7: {
    title: 'L7: direct vs the L4 mesh vs the waypoint vs an HAProxy http mTLS pair (lab, root)',
    load: () => import('./l7.ts'),
  },
  overhead: {
    title: 'Overhead: direct vs ambient L4 vs ambient with a waypoint vs sidecars, N server pods (lab, root)',
    load: () => import('./overhead.ts'),
  },
};

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--'));
const wanted = args.filter((a) => !a.startsWith('--'));
const options: BenchOptions = { quick: flags.includes('--quick'), flags };
for (const name of wanted) {
  if (!(name in MODULES)) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(MODULES).join(', ')}`);
    process.exit(2);
  }
}
let failed = false;
for (const [name, mod] of Object.entries(MODULES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const started = performance.now();
  try {
    const { bench } = await mod.load();
    const rows = await bench(options);
    console.log(
      `${formatTable(mod.title, rows)}\n\n(${name}: ${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
    );
  } catch (err) {
    failed = true;
    console.error(`benchmark ${name} failed: ${(err as Error).stack ?? err}`);
  }
}
process.exitCode = failed ? 1 : 0;
