// Checks that dependencies point one way (STYLE.md §2): each folder of src/ imports only from its
// own files or from a lower layer, and only through that folder's front door (index.ts).
// Usage: node scripts/check-deps.ts   (exit 1 and one line per violation when the rule is broken)

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Lower numbers are more basic; a folder may import only from strictly lower layers. */
export const LAYERS: Record<string, number> = {
  errors: 0,
  log: 0,
  config: 1,
  identity: 1,
  os: 1,
  policy: 2,
  lab: 3,
  dns: 3,
  hbone: 3,
  capture: 3,
  telemetry: 3,
  samples: 3,
  xds: 3,
  proxy: 4,
  routing: 4,
  control: 5,
  ztunnel: 5,
  waypoint: 5,
  sidecar: 6,
  dashboard: 6,
  cli: 7,
};

const SRC = resolve(dirname(new URL(import.meta.url).pathname), '../src');
const IMPORT = /(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g;

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

export function violations(): string[] {
  const out: string[] = [];
  for (const file of files(SRC)) {
    const [folder] = relative(SRC, file).split('/');
    if (folder === undefined || folder.endsWith('.ts')) continue;
    const layer = LAYERS[folder];
    if (layer === undefined) {
      out.push(`${relative(SRC, file)}: folder "${folder}" has no layer in scripts/check-deps.ts`);
      continue;
    }
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = m[1] ?? '';
      if (!spec.startsWith('.')) continue;
      const target = relative(SRC, resolve(dirname(file), spec));
      const [other, ...rest] = target.split('/');
      if (other === folder) continue;
      const where = `${relative(SRC, file)} imports ${spec}`;
      const otherLayer = other === undefined ? undefined : LAYERS[other];
      if (otherLayer === undefined) out.push(`${where}: outside any known folder`);
      else if (otherLayer >= layer)
        out.push(`${where}: ${folder} (layer ${layer}) may not depend on ${other} (layer ${otherLayer})`);
      else if (rest.join('/') !== 'index.ts') out.push(`${where}: import ${other}/index.ts, its front door`);
    }
  }
  return out;
}

if (import.meta.main) {
  const found = violations();
  for (const v of found) console.error(v);
  console.log(
    found.length === 0 ? 'dependency direction: ok' : `dependency direction: ${found.length} violation(s)`,
  );
  process.exitCode = found.length === 0 ? 0 : 1;
}
