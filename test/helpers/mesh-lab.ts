// A whole mesh in the lab (root), as `ambit up` brings it up, for end-to-end tests: its own temp home
// and lab name, torn down (`meshDown`) and removed when the test ends, even when it fails.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type Mesh, type MeshOptions, meshDown, meshUp } from '../../src/cli/up.ts';
import type { Lab } from '../../src/lab/index.ts';
import { eventually } from './lab.ts';

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

/** A Namespace, in the mesh (`istio.io/dataplane-mode: ambient`) or not. */
export const namespace = (name: string, ambient: boolean) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: ambient ? { 'istio.io/dataplane-mode': 'ambient' } : {} },
});

/** Runs `argv` in `where` (a node, a pod or the control target), asserting it exits 0; its stdout. */
export async function labOk(lab: Lab, where: string, argv: string[], input?: string): Promise<string> {
  const r = await lab.exec(where, argv, { input, timeoutMs: 15_000 });
  assert.equal(r.code, 0, `${where}: ${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Waits until every one of `addresses` is in `node`'s capture set (nftables `ambit enrolled`). */
export async function enrolled(
  lab: Lab,
  node: string,
  addresses: string[],
  timeoutMs = 20_000,
): Promise<void> {
  await eventually(
    async () => {
      const r = await lab.exec(node, ['nft', 'list', 'set', 'ip', 'ambit', 'enrolled']);
      return addresses.every((a) => r.stdout.includes(a)) ? true : undefined;
    },
    timeoutMs,
    `${addresses.join(', ')} enrolled on ${node}`,
  );
}

/**
 * A program for a pod (`node --input-type=module -e` it with host, port, count and optionally holdMs):
 * opens N connections at once, checks each echoes, holds them all open for holdMs, then closes them and
 * prints how many were still open and how many echoed, as JSON.
 */
export const CONCURRENT_ECHO = `
import net from 'node:net';
const [host, port, count, holdMs] = process.argv.slice(1);
const sockets = [];
let echoed = 0;
await Promise.all(Array.from({ length: Number(count) }, (_, i) => new Promise((resolve, reject) => {
  const s = net.connect({ host, port: Number(port) });
  sockets.push(s);
  s.once('error', reject);
  s.once('connect', () => s.write('ping ' + i));
  s.once('data', (d) => { if (String(d) === 'ping ' + i) echoed++; resolve(); });
})));
await new Promise((r) => setTimeout(r, Number(holdMs ?? 0)));
const open = sockets.filter((s) => !s.destroyed).length;
for (const s of sockets) s.destroy();
console.log(JSON.stringify({ open, echoed }));
`;
