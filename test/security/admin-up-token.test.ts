// Issue 8, Low item: `ambit up` minted a join token for every ztunnel it restarted, even one whose node
// holds a valid credential (and an unused token stays valid for an hour). It asks for one only when
// the node has no credential it can use.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { needsJoinToken } from '../../src/cli/up.ts';
import { joinNode, startTestControl } from '../helpers/mesh.ts';

test('a join token is needed only without a usable credential for that node', async (t) => {
  const cp = await startTestControl(t);
  const cred = await joinNode(cp, 'node-1');
  const dir = await mkdtemp(join(tmpdir(), 'ambit-up-token-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'node-credential.json');
  const bundle = cp.ca.bundle.toPem();

  assert.equal(await needsJoinToken(file, 'node-1', bundle), true, 'no credential yet');
  await writeFile(file, JSON.stringify(cred));
  assert.equal(await needsJoinToken(file, 'node-1', bundle), false, 'a valid credential');
  assert.equal(await needsJoinToken(file, 'node-2', bundle), true, "another node's credential");
  const otherCa = (await startTestControl(t)).ca.bundle.toPem();
  assert.equal(await needsJoinToken(file, 'node-1', otherCa), true, 'issued under another CA');
  const later = Date.now() + 30 * 24 * 3600 * 1000;
  assert.equal(await needsJoinToken(file, 'node-1', bundle, later), true, 'expired');
  await writeFile(file, '{not json');
  assert.equal(await needsJoinToken(file, 'node-1', bundle), true, 'unreadable');
});
