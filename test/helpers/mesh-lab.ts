// A whole mesh in the lab (root), as `ambit up` brings it up, for end-to-end tests: its own temp home
// and lab name, torn down (`meshDown`) and removed when the test ends, even when it fails.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type Mesh, type MeshOptions, meshDown, meshUp } from '../../src/cli/up.ts';

/**
 * `meshUp` with 2 nodes (unless `opts` says otherwise) in a home `ambit-<prefix>-*` and a lab named after
 * the prefix's first letter and 6 random hex digits.
 */
export async function labMesh(
  t: TestContext,
  prefix: string,
  opts: Omit<MeshOptions, 'home' | 'lab'> = {},
): Promise<Mesh> {
  const home = await mkdtemp(join(tmpdir(), `ambit-${prefix}-`));
  const name = `${prefix[0]}${randomBytes(3).toString('hex')}`;
  t.after(async () => {
    await meshDown({ home, lab: name });
    await rm(home, { recursive: true, force: true });
  });
  return meshUp({ nodes: 2, ...opts, home, lab: name });
}
