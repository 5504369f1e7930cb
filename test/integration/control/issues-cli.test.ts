// `ambit get issues` shows what the registry refused or ignored, per namespace or across all.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ambit, startControl } from '../../helpers/control.ts';
import { eventually } from '../../helpers/lab.ts';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: games, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Service
metadata: { name: dns, namespace: games }
spec: { selector: { app: dns }, ports: [{ port: 53, protocol: UDP }] }
`;

test('ambit get issues lists the registry issues of a namespace', async (t) => {
  const cp = await startControl(t);
  const env = { AMBIT_SERVER: cp.server };
  const applied = await ambit(['apply', '-f', '-'], env, MANIFEST);
  assert.equal(applied.code, 0, applied.stderr);
  const shown = await eventually(
    async () => {
      const r = await ambit(['get', 'issues', '-n', 'games', '-o', 'json'], env);
      assert.equal(r.code, 0, r.stderr);
      const { items } = JSON.parse(r.stdout) as { items: Array<{ object: string; message: string }> };
      return items.length > 0 ? items : undefined;
    },
    10_000,
    'the UDP issue',
  );
  assert.ok(
    shown.some((i) => i.object.includes('games/dns') && /UDP/.test(i.message)),
    JSON.stringify(shown),
  );
  const table = await ambit(['get', 'issues', '-n', 'games'], env);
  assert.match(table.stdout, /OBJECT\s+ISSUE/);
  const elsewhere = await ambit(['get', 'issues', '-n', 'default', '-o', 'json'], env);
  assert.deepEqual(JSON.parse(elsewhere.stdout).items, []);
});
